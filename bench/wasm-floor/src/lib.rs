//! The benchmark's floors: proxy-wasm HTTP filters that decide nothing.
//!
//! Not a product part: `cargo xtask bench` loads this module in two listeners
//! of its own, so the table shows what any Rust proxy-wasm filter costs in
//! Envoy's V8 before it does Sekisho's work.
//!
//! - With no plugin configuration (`wasm_floor`), every request passes
//!   untouched: context creation and one VM entry per callback.
//! - With the configuration `rewrite` (`wasm_rewrite`), each request's headers
//!   are read and written back the least way SPEC F6 allows: the whole map
//!   read in one call, `authorization` left out and five fixed identity
//!   headers added, written back in one call. Any change to request headers
//!   also makes Envoy clear the stream's route cache and route it again.
//!
//! The gap between no auth and `wasm_floor` is V8 and the ABI; the gap up to
//! `wasm_rewrite` is what taking the credential out and putting the identity
//! in costs through the ABI; the gap from there to Sekisho is the filter's own
//! work.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Floor { rewrite: Rc::new(false) }) });
}}

/// Stand-ins for the identity headers Sekisho adds, of typical sizes.
const IDENTITY: [(&str, &[u8]); 5] = [
    ("x-sekisho-auth", b"jwt"),
    ("x-sekisho-instance", b"bench"),
    ("x-sekisho-scopes", b"mcp:read mcp:write"),
    ("x-sekisho-subject", b"bench-user"),
    ("x-sekisho-client-id", b"bench-client"),
];

struct Floor {
    rewrite: Rc<bool>,
}

impl Context for Floor {}

impl RootContext for Floor {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten();
        self.rewrite = Rc::new(config.as_deref() == Some(b"rewrite"));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass { rewrite: *self.rewrite }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Pass {
    rewrite: bool,
}

impl Context for Pass {}

impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.rewrite {
            let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
            let kept = headers.iter().filter(|(name, _)| name != "authorization");
            let pairs: Vec<(&str, &[u8])> =
                kept.map(|(name, value)| (name.as_str(), value.as_slice())).chain(IDENTITY).collect();
            let _ = hostcalls::set_map_bytes(MapType::HttpRequestHeaders, pairs);
        }
        Action::Continue
    }
}
