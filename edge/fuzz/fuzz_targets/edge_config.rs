//! `fas-edge.toml`: any text parses to a config that validates, or to an error naming the
//! file — never a panic.

#![no_main]

use std::path::Path;

use fas_edge::config::EdgeConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match EdgeConfig::parse(text, Path::new("fuzz.toml")) {
        Ok(cfg) => {
            cfg.validate(Path::new("fuzz.toml"))
                .expect("a parsed config validates");
            let _ = cfg.fixed_threshold();
            let _ = cfg.v4l2();
        }
        Err(e) => assert!(e.to_string().contains("fuzz.toml")),
    }
    let _ = fas_edge::config::actuator_only_from_str(text);
});
