//! ns-oci: the native binary of ns. Today it provides the helper mode that `@ns/core` starts
//! for every container (`ns-oci init`, request on fd 3); the runc-compatible commands for
//! engines come on top of the same library.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("init") => std::process::exit(ns_runtime::launch::helper_main(3)),
        Some("--version") | Some("-v") | Some("version") => {
            println!("ns-oci version {}", ns_runtime::VERSION);
            println!("commit: {}", option_env!("NS_COMMIT").unwrap_or("unknown"));
            println!("spec: {}", ns_runtime::SPEC_VERSION);
        }
        _ => {
            eprintln!("usage: ns-oci --version");
            eprintln!("       ns-oci init   (internal: the helper started by @ns/core; reads its request on fd 3)");
            std::process::exit(1);
        }
    }
}
