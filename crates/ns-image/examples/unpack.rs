//! Unpack one layer blob from the command line, as the store of the caller would:
//!
//!   cargo run --release -p ns-image --example unpack -- BLOB DEST DIGEST [DIFF_ID]
//!
//! Prints what `unpack_layer` returns (or its error) as JSON.

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 3 {
        eprintln!("usage: unpack BLOB DEST DIGEST [DIFF_ID]");
        std::process::exit(2);
    }
    let req = ns_image::UnpackRequest::for_caller(
        a[0].clone().into(),
        None,
        a[1].clone().into(),
        a[2].clone(),
        a.get(3).cloned(),
    );
    match ns_image::unpack_layer(&req) {
        Ok(u) => println!("{}", serde_json::to_string(&u).unwrap_or_default()),
        Err(e) => {
            println!("{}", serde_json::to_string(&e).unwrap_or_default());
            std::process::exit(1);
        }
    }
}
