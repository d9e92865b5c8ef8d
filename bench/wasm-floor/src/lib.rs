//! A proxy-wasm HTTP filter that lets every request through untouched.
//!
//! Not a product part: `cargo xtask bench` loads it in its own listener so the
//! table shows what any Rust proxy-wasm filter costs in Envoy's V8 (context
//! creation and one VM entry per callback) before it does any work. The gap
//! between this floor and no auth is out of the filter's hands; the gap
//! between Sekisho and this floor is the filter's own work.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Floor) });
}}

struct Floor;

impl Context for Floor {}

impl RootContext for Floor {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Pass;

impl Context for Pass {}

impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}
