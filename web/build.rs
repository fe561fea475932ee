//! Builds the invisible Flash phone (`flash_phone/`, Haxe) into OUT_DIR for
//! `static_files` to embed. Without Haxe the SWF is left empty and sono serves
//! a 404 that says why; the test suite checks the SWF, so CI cannot miss it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let swf = out.join("flash_phone.swf");
    let source = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("../flash_phone");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-env-changed=PATH");
    let built = Command::new("haxe")
        .current_dir(&source)
        .args(["build.hxml", "-swf"])
        .arg(&swf)
        .status();
    match built {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("haxe failed to build flash_phone ({status}); see its errors above"),
        Err(_) => {
            println!(
                "cargo:warning=haxe not found: flash_phone.swf is not built (apt-get install haxe)"
            );
            std::fs::write(&swf, b"").expect("writing an empty flash_phone.swf");
        }
    }
}
