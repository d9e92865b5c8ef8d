//! The benchmark's floors: proxy-wasm HTTP filters that decide nothing.
//!
//! Not a product part: `cargo xtask bench` loads this module in two listeners
//! of its own, so the table shows what any proxy-wasm filter costs in Envoy's
//! V8 before it does Sekisho's work.
//!
//! The module is written against the ABI directly, without the Rust SDK, and
//! exports the least a filter can: `proxy_on_request_headers` and the
//! allocator Envoy hands data through. Envoy enters the VM only for the
//! callbacks a module exports, so this is the least any filter in any
//! language costs: no stream context is created inside the VM, no body or
//! delete callback runs (Sekisho exports those three; it needs the body for
//! some decisions and its per-stream state).
//!
//! - With no plugin configuration (`wasm_floor`), every request passes
//!   untouched: one VM entry per request.
//! - With the configuration `rewrite` (`wasm_rewrite`), each request's headers
//!   are read and changed the least way SPEC F6 allows, through the same
//!   calls Sekisho makes: the whole map read in one call (Sekisho needs it to
//!   find every `x-sekisho-*` a client sent), `authorization` removed, five
//!   fixed identity headers added. Any change to request headers also makes
//!   Envoy clear the stream's route cache and route it again.
//!
//! The gap between no auth and `wasm_floor` is Envoy's wasm filter, V8 and
//! the ABI; the gap up to `wasm_rewrite` is what taking the credential out
//! and putting the identity in costs through the ABI; the gap from there to
//! Sekisho is the filter's own work and its three further callbacks.

use std::sync::atomic::{AtomicBool, Ordering};

/// Envoy's `MapType::HttpRequestHeaders`.
const REQUEST_HEADERS: u32 = 0;
/// Envoy's `BufferType::PluginConfiguration`.
const PLUGIN_CONFIGURATION: u32 = 7;
/// The ABI's `Action::Continue`.
const CONTINUE: u32 = 0;

/// Stand-ins for the identity headers Sekisho adds, of typical sizes.
const IDENTITY: [(&str, &str); 5] = [
    ("x-sekisho-auth", "jwt"),
    ("x-sekisho-instance", "bench"),
    ("x-sekisho-scopes", "mcp:read mcp:write"),
    ("x-sekisho-subject", "bench-user"),
    ("x-sekisho-client-id", "bench-client"),
];

/// Whether this VM's plugin was configured `rewrite` (one VM per listener).
static REWRITE: AtomicBool = AtomicBool::new(false);

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_buffer_bytes(kind: u32, start: usize, size: usize, data: *mut *mut u8, len: *mut usize) -> u32;
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_remove_header_map_value(map: u32, name: *const u8, name_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map: u32,
        name: *const u8,
        name_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
}

/// The ABI version Envoy reads from the export's name.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Where Envoy puts the data it hands over: `size` bytes from Rust's allocator,
/// taken back with `Vec::from_raw_parts`.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size));
    buffer.as_mut_ptr()
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(_root_context: u32, size: usize) -> u32 {
    REWRITE.store(
        taken(|data, len| unsafe { proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, data, len) }) == b"rewrite",
        Ordering::Relaxed,
    );
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(_context: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    if REWRITE.load(Ordering::Relaxed) {
        // SAFETY (all three calls): Envoy reads the given lengths at the given
        // addresses during the call, and writes only through `data` and `len`.
        std::hint::black_box(taken(|data, len| unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, data, len) }));
        unsafe {
            proxy_remove_header_map_value(REQUEST_HEADERS, b"authorization".as_ptr(), b"authorization".len());
            for (name, value) in IDENTITY {
                proxy_add_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len(), value.as_ptr(), value.len());
            }
        }
    }
    CONTINUE
}

/// The bytes a hostcall hands back through [`proxy_on_memory_allocate`];
/// empty when it hands back none.
fn taken(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut len: usize = 0;
    if call(&mut data, &mut len) != 0 || data.is_null() {
        return Vec::new();
    }
    // SAFETY: Envoy got `data` from `proxy_on_memory_allocate(len)`, which
    // allocates exactly `len` bytes with Rust's allocator.
    unsafe { Vec::from_raw_parts(data, len, len) }
}
