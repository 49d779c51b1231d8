//! Compiles proto/confab/v1/*.proto with protox (no protoc needed) and
//! keeps the descriptor set for gRPC server reflection.

use prost::Message;

fn main() {
    let proto_dir = "../../proto";
    let files = ["../../proto/confab/v1/policy.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, [proto_dir]).expect("the .proto files compile");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{out}/confab_descriptor.bin"), fds.encode_to_vec())
        .expect("write descriptor set");
    tonic_prost_build::configure()
        .compile_fds(fds)
        .expect("generate the gRPC code");
}
