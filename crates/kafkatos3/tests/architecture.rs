//! The component map of `src/lib.rs`, checked: what each folder of `src/` may use. A room that
//! reaches into one it must not is caught here, before the layout stops saying what the code does.

use std::path::{Path, PathBuf};

/// (room, what its code must never mention).
const RULES: &[(&str, &[&str])] = &[
    ("tools", &["crate::pipeline", "crate::daemon"]),
    ("archive", &["crate::local", "crate::pipeline", "crate::daemon", "crate::tools", "rdkafka"]),
    ("local", &["crate::archive", "crate::pipeline", "crate::daemon", "crate::tools", "rdkafka", "object_store"]),
    ("config", &["crate::archive", "crate::local", "crate::pipeline", "crate::daemon", "crate::tools"]),
    ("observe", &["crate::archive", "crate::local", "crate::pipeline", "crate::daemon", "crate::tools"]),
    ("pipeline", &["crate::daemon", "crate::tools"]),
    ("kafka", &["crate::local", "crate::pipeline", "crate::daemon", "crate::tools", "crate::observe"]),
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn each_room_of_the_source_uses_only_what_the_component_map_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (room, forbidden) in RULES {
        let files = rust_files(&src.join(room));
        assert!(!files.is_empty(), "src/{room} has no code: the map is out of date");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Code only: a doc comment may point the reader elsewhere.
            for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("//")) {
                for word in forbidden.iter().filter(|word| line.contains(*word)) {
                    broken.push(format!("{}:{}: {room} uses {word}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "the component map (src/lib.rs) is broken:\n{}", broken.join("\n"));
}

#[test]
fn names_stands_alone() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/names.rs")).unwrap();
    let uses: Vec<&str> = text.lines().filter(|l| l.contains("crate::")).collect();
    assert!(uses.is_empty(), "names.rs is what the other rooms share; it uses none of them: {uses:?}");
}
