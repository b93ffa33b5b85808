//! The raw INI reader: sections of `key = value` entries with their line numbers, no meaning yet.
//! The rules it follows are listed in the parent module's documentation.

use std::path::Path;

use super::ConfigError;

/// A parsed file: sections in file order.
#[derive(Debug)]
pub(super) struct Ini {
    pub(super) sections: Vec<Section>,
}

/// One `[name]` section and its entries in file order.
#[derive(Debug)]
pub(super) struct Section {
    pub(super) name: String,
    pub(super) line: usize,
    pub(super) entries: Vec<Entry>,
}

/// One `key = value`; `line` is where the key is, even when the value continues below it.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) value: String,
    pub(super) line: usize,
}

impl Section {
    pub(super) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.key == key)
    }
}

pub(super) fn parse(text: &str, path: &Path) -> Result<Ini, ConfigError> {
    // Editors on Windows may save UTF-8 with a byte-order mark; it is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sections: Vec<Section> = Vec::new();
    // Whether the last entry may still receive continuation lines: true from a `key = value` line
    // until the next section header. Blank and comment lines do not end a value (as in Python).
    let mut value_open = false;

    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw_line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }

        if value_open && raw_line.starts_with(char::is_whitespace) {
            if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                entry.value.push('\n');
                entry.value.push_str(trimmed);
                continue;
            }
        }

        if trimmed.starts_with('[') {
            let name = section_name(trimmed)
                .ok_or_else(|| ConfigError::MalformedSectionHeader { path: path.to_owned(), line })?;
            if let Some(first) = sections.iter().find(|s| s.name == name) {
                return Err(ConfigError::DuplicateSection {
                    path: path.to_owned(),
                    line,
                    section: name.to_owned(),
                    first_line: first.line,
                });
            }
            sections.push(Section { name: name.to_owned(), line, entries: Vec::new() });
            value_open = false;
            continue;
        }

        let Some((raw_key, raw_value)) = trimmed.split_once(['=', ':']) else {
            return Err(ConfigError::MalformedLine { path: path.to_owned(), line });
        };
        let key = raw_key.trim().to_lowercase();
        if key.is_empty() {
            return Err(ConfigError::MalformedLine { path: path.to_owned(), line });
        }
        let Some(section) = sections.last_mut() else {
            return Err(ConfigError::KeyOutsideSection { path: path.to_owned(), line, key });
        };
        if let Some(first) = section.get(&key) {
            return Err(ConfigError::DuplicateKey {
                path: path.to_owned(),
                line,
                section: section.name.clone(),
                key,
                first_line: first.line,
            });
        }
        let value = strip_inline_comment(raw_value.trim()).trim();
        // Python 2's ConfigParser turns `""` into an empty value, and the original's example
        // relies on it; `''` is accepted too because nobody means two quote characters.
        let value = if value == "\"\"" || value == "''" { "" } else { value };
        section.entries.push(Entry { key, value: value.to_owned(), line });
        value_open = true;
    }
    Ok(Ini { sections })
}

/// `[name]` optionally followed by a comment; the name is trimmed and must not be empty.
fn section_name(trimmed: &str) -> Option<&str> {
    let inner = trimmed.strip_prefix('[')?;
    let (name, rest) = inner.split_once(']')?;
    let rest = rest.trim_start();
    let name = name.trim();
    let rest_is_comment = rest.is_empty() || rest.starts_with('#') || rest.starts_with(';');
    (!name.is_empty() && rest_is_comment).then_some(name)
}

/// Python 2's RawConfigParser rule, kept so the original's files mean the same thing: the first
/// `;` of the value starts a comment if it opens the value or follows whitespace. Any later `;`,
/// and `#` anywhere, are part of the value.
fn strip_inline_comment(value: &str) -> &str {
    match value.find(';') {
        Some(0) => "",
        Some(position) if value[..position].ends_with(char::is_whitespace) => &value[..position],
        _ => value,
    }
}
