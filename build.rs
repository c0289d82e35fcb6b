//! Embeds the model zoo: every `zoo/*.net` file becomes an entry of
//! `ZOO` (name, text), so a zoo name works wherever a path does.

use std::fmt::Write;

fn main() {
    println!("cargo:rerun-if-changed=zoo");
    // Read when the script runs, not when it is compiled: a script built in another
    // checkout sharing this target directory would read that checkout's zoo.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest).join("zoo");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("zoo/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "net"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let mut code = String::from(
        "/// The zoo: (name, source text), sorted by name.\npub const ZOO: &[(&str, &str)] = &[\n",
    );
    for n in &names {
        let path = dir.join(format!("{n}.net"));
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            code,
            "    ({n:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("zoo.rs");
    std::fs::write(out, code).expect("writes zoo.rs");
}
