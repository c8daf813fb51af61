//! Compiles the `.proto` schemas with a pure-Rust protobuf compiler, so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    let dir = root.join("meshmind").join("v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let descriptors = protox::compile(&files, [&root])?;
    let mut config = prost_build::Config::new();
    // Unit tests derive proptest strategies for every generated type.
    config.type_attribute(
        ".",
        "#[cfg_attr(test, derive(::proptest_derive::Arbitrary))]",
    );
    // A parameter change holds at most a few dozen small values; keep arbitrary ones under the
    // transaction's size cap.
    config.field_attribute(
        ".meshmind.v1.SetSubnetParams.values",
        "#[cfg_attr(test, proptest(strategy = \"::proptest::collection::vec(::proptest::arbitrary::any::<ParamValue>(), 0..8)\"))]",
    );
    config.compile_fds(descriptors)?;
    Ok(())
}
