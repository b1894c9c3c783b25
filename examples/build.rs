//! Generates the gRPC example's messages, server trait and client from `proto/demo.proto`
//! with protox (a protobuf compiler in Rust), so building needs no `protoc` installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["demo.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
