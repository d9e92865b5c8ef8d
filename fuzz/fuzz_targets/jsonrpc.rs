//! Arbitrary request bodies: the JSON-RPC reader must answer, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sekisho_filter::jsonrpc::operations(data);
});
