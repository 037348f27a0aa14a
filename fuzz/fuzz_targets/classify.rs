//! Fuzz target `classify`: see `Example::classify` in `fuzz/src/lib.rs`.

#![no_main]

use std::sync::LazyLock;

use herald_fuzz::Example;
use libfuzzer_sys::fuzz_target;

static EXAMPLE: LazyLock<Example> =
    LazyLock::new(|| Example::read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")));

fuzz_target!(|data: &[u8]| EXAMPLE.classify(data));
