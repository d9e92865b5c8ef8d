//! The benchmark's floors: proxy-wasm HTTP filters that decide nothing.
//!
//! Not a product part: `cargo xtask bench` loads this module in two listeners
//! of its own, so the table shows what any Rust proxy-wasm filter costs in
//! Envoy's V8 before it does Sekisho's work.
//!
//! - With no plugin configuration (`wasm_floor`), every request passes
//!   untouched: context creation and one VM entry per callback.
//! - With the configuration `rewrite` (`wasm_rewrite`), each request's headers
//!   are read and changed the least way SPEC F6 allows, through the same
//!   calls Sekisho makes: the whole map read in one call (Sekisho needs it to
//!   find every `x-sekisho-*` a client sent), `authorization` removed, five
//!   fixed identity headers added. Any change to request headers also makes
//!   Envoy clear the stream's route cache and route it again.
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
const IDENTITY: [(&str, &str); 5] = [
    ("x-sekisho-auth", "jwt"),
    ("x-sekisho-instance", "bench"),
    ("x-sekisho-scopes", "mcp:read mcp:write"),
    ("x-sekisho-subject", "bench-user"),
    ("x-sekisho-client-id", "bench-client"),
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
            std::hint::black_box(request_headers());
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "authorization");
            for (name, value) in IDENTITY {
                let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value);
            }
        }
        Action::Continue
    }
}

/// The serialized request header map, in one call and one buffer, as Sekisho
/// reads it (the SDK's `get_map_bytes` would copy every header twice more).
fn request_headers() -> Vec<u8> {
    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_get_header_map_pairs(map_type: MapType, data: *mut *mut u8, size: *mut usize) -> u32;
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: Envoy fills `data` with `size` bytes it got from the SDK's
    // `proxy_on_memory_allocate`, which allocates them with Rust's allocator.
    unsafe {
        match proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) {
            0 if !data.is_null() => Vec::from_raw_parts(data, size, size),
            _ => Vec::new(),
        }
    }
}
