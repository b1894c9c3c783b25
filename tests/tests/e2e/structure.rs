//! Issue 25, item 11: no import circle between the modules of any library crate (one home
//! for each rule: an error type sits beside what raises it, or in a module that imports
//! nothing from its siblings). Reads each crate's `src/`, folders included, outside
//! `#[cfg(test)] mod tests`, for `crate::` and `super::` paths; a module in a folder is
//! `folder::module`; `crate::Item` counts as an import of the module the root re-exports
//! it from. Comments (doc links included) are not imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of a crate by its path (`revocation::memory`; `lib` for the root), with
/// its code outside `#[cfg(test)] mod tests`. `a.rs` and `a/mod.rs` are both `a`.
fn modules(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() {
            // `src/bin/*.rs` are crates of their own, not modules.
            if !(prefix.is_empty() && stem == "bin") {
                modules(&path, &format!("{prefix}{stem}::"), out);
            }
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let name = match (prefix, stem.as_str()) {
            (_, "mod") => prefix.trim_end_matches("::").to_owned(),
            _ => format!("{prefix}{stem}"),
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        // Comments and doc links name items without importing them.
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        out.entry(name).or_default().push_str(&code);
    }
}

/// The paths a `use` or an expression names after `crate::` or `super::`, groups
/// (`crate::{a::X, b::{Y, Z}}`) expanded: `a::X`, `b::Y`, `b::Z`.
fn paths(rest: &str) -> Vec<String> {
    let head: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let after = &rest[head.len()..];
    if !after.starts_with('{') {
        return vec![head];
    }
    let mut depth = 0;
    let mut items = Vec::new();
    let mut item = String::new();
    for c in after[1..].chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    items
        .iter()
        .flat_map(|i| paths(i.trim()))
        .map(|p| format!("{head}{p}"))
        .collect()
}

/// The longest known module that `path` (`a::b::Item`) starts with.
fn owner(path: &str, names: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| names.contains(m))
}

/// What the crate root re-exports from its own modules (`pub use handle::{A, B};`), so
/// that `crate::A` counts as an import of `handle`: a root re-export must not hide a circle.
fn reexports(lib: &str, names: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (i, _) in lib.match_indices("pub use ") {
        for p in paths(&lib[i + "pub use ".len()..]) {
            if let Some((module, item)) = p.rsplit_once("::") {
                if names.contains(module) {
                    out.insert(item.trim().to_owned(), module.to_owned());
                }
            }
        }
    }
    out
}

fn imports(crate_src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules_of = BTreeMap::new();
    modules(crate_src, "", &mut modules_of);
    let names: BTreeSet<String> = modules_of.keys().cloned().collect();
    let reexported = reexports(&modules_of["lib"], &names);
    modules_of
        .iter()
        .map(|(name, code)| {
            let parent = name.rsplit_once("::").map_or("", |(p, _)| p);
            let mut uses = BTreeSet::new();
            for (base, from) in [
                ("crate::", String::new()),
                ("super::", format!("{parent}::")),
            ] {
                for (i, _) in code.match_indices(base) {
                    if code[..i].ends_with("pub(") || code[..i].ends_with("crate::") {
                        continue;
                    }
                    for p in paths(&code[i + base.len()..]) {
                        let first = p.split("::").next().unwrap_or_default();
                        let target = match base {
                            "crate::" => {
                                owner(&p, &names).or_else(|| reexported.get(first).cloned())
                            }
                            _ => owner(&format!("{from}{p}"), &names)
                                .or_else(|| (!parent.is_empty()).then(|| parent.to_owned())),
                        };
                        if let Some(m) = target.filter(|m| m != name) {
                            uses.insert(m);
                        }
                    }
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut circles = Vec::new();
    // Every crate of more than one module (the CLI and the support crates are one file).
    for krate in [
        "crates/jwe-session-core",
        "crates/jwe-session",
        "crates/jwe-session-redis",
        "crates/jwe-session-postgres",
        "crates/jwe-session-file",
        "examples",
    ] {
        let deps = imports(&root.join(krate).join("src"));
        assert!(deps.len() > 1, "{krate}: no modules read");
        for module in deps.keys() {
            if let Some(c) = circle(&deps, module) {
                circles.push(format!("{krate}: {}", c.join(" -> ")));
            }
        }
        if krate == "crates/jwe-session-core" {
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
