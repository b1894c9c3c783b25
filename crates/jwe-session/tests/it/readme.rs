//! The README's axum section shows `examples/axum.rs` as it is, so the code a newcomer
//! copies is the code CI compiles and tests.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[test]
fn the_readme_shows_the_axum_example_as_it_is() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(dir.join("../../README.md")).expect("README.md");
    let example = std::fs::read_to_string(dir.join("examples/axum.rs")).expect("the example");
    assert!(
        // `ignore`: the README's snippets are doc tests of the examples crate, and this one
        // is compiled and tested as the example itself.
        readme.contains(&format!("```rust,ignore\n{example}```\n")),
        "README.md's axum section differs from crates/jwe-session/examples/axum.rs: copy the file into it"
    );
}
