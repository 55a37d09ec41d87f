//! The resolver as a program of its own, for this crate's tests (`CARGO_BIN_EXE_ns-dns`).
//! ns ships it as a hidden verb of `ns-oci` instead, which calls the same `ns_dns::main`.

fn main() {
    ns_dns::main(std::env::args().skip(1))
}
