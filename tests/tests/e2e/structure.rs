//! Issue 25, item 11: no import circle between the modules of any library crate (one home
//! for each rule: an error type sits beside what raises it, or in a module that imports
//! nothing from its siblings). Reads each crate's `src/*.rs`, outside `#[cfg(test)]`
//! modules, for `crate::<module>` paths.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn imports(crate_src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(crate_src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        modules.insert(name, code.to_owned());
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, code)| {
            let mut uses = BTreeSet::new();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let rest = rest.strip_prefix('{').unwrap_or(rest);
                let module: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if module != *name && names.contains(&module) {
                    uses.insert(module);
                }
            }
            (name.clone(), uses)
        })
        .collect()
}

/// A circle through `from`, if there is one.
fn circle(deps: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        for next in &deps[path.last().unwrap()] {
            if next == from {
                let mut found = path.clone();
                found.push(next.clone());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_module_imports_its_way_back_to_itself() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut circles = Vec::new();
    for krate in [
        "jwe-session-core",
        "jwe-session",
        "jwe-session-redis",
        "jwe-session-file",
    ] {
        let deps = imports(&root.join(krate).join("src"));
        assert!(deps.len() > 1, "{krate}: no modules read");
        for module in deps.keys() {
            if let Some(c) = circle(&deps, module) {
                circles.push(format!("{krate}: {}", c.join(" -> ")));
            }
        }
        if krate == "jwe-session-core" {
            let leaf: BTreeSet<&str> = ["names", "time"].into();
            let error: BTreeSet<&str> = deps["error"].iter().map(String::as_str).collect();
            assert!(error.is_subset(&leaf), "error.rs imports {error:?}");
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}
