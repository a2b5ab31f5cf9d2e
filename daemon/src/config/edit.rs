//! Editing the trunk groups of a configuration file in place, the way `cardpbx trunk add|set|
//! remove` does: comments, order and formatting of everything that is not edited stay as the
//! user wrote them (the file is edited as a [`toml_edit`] document, not re-serialised).
//!
//! Every edit is checked with the normal loader before the file is touched: the new text is
//! written to a scratch file next to the original (so a relative `include_dir` resolves the
//! same way) and loaded with [`Config::load`], include directory and semantic checks included.
//! Only when that succeeds is the original replaced, atomically (write a sibling file, fsync,
//! rename over it). On any error the file is untouched and the error names what was wrong and
//! where.

use super::load::{ConfigError, ConfigErrors};
use super::model::{Config, PortKind, PortRef, TrunkSignalling};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use toml_edit::{Array, DocumentMut, Item, Table, Value};

/// The `[[trunk_group]]` keys the trunk commands may set (`name` identifies the group).
pub const TRUNK_KEYS: &[&str] = &[
    "signalling",
    "ports",
    "channels",
    "hunt",
    "switch_type",
    "presentation",
    "incoming",
    "fax_destination",
    "fax_detect_s",
];

/// Keys whose empty value (`incoming=`) removes the key, back to its default.
const OPTIONAL_KEYS: &[&str] = &["channels", "incoming", "fax_destination"];

/// A change to the trunk groups of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrunkEdit {
    /// Add a new `[[trunk_group]]` after the last one.
    Add {
        /// Its name.
        name: String,
        /// `key = value` settings, keys from [`TRUNK_KEYS`].
        settings: Vec<(String, String)>,
    },
    /// Change keys of an existing trunk group.
    Set {
        /// The group's name.
        name: String,
        /// `key = value` settings; an empty value removes an optional key.
        settings: Vec<(String, String)>,
    },
    /// Remove a trunk group no route uses.
    Remove {
        /// The group's name.
        name: String,
    },
}

impl TrunkEdit {
    /// The name of the trunk group the edit concerns.
    pub fn name(&self) -> &str {
        match self {
            TrunkEdit::Add { name, .. }
            | TrunkEdit::Set { name, .. }
            | TrunkEdit::Remove { name } => name,
        }
    }
}

/// Why an edit was refused. The file is untouched in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
    /// The file is not valid TOML as it stands.
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// No trunk group has this name.
    NotFound {
        /// The name asked for.
        name: String,
        /// The trunk groups there are.
        existing: Vec<String>,
    },
    /// `add` of a name that is taken.
    Exists {
        /// The name.
        name: String,
        /// The file that has it.
        file: PathBuf,
    },
    /// `remove` of a group a route uses.
    Routed {
        /// The trunk group.
        name: String,
        /// Prefixes of the routes that use it.
        prefixes: Vec<String>,
    },
    /// A setting the trunk commands do not know, or a value of the wrong kind.
    BadSetting(String),
    /// The edited configuration does not pass the loader's checks.
    Invalid(ConfigErrors),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Io { path, message } => write!(f, "{}: {message}", path.display()),
            EditError::Syntax { path, message } => {
                write!(f, "{}: not valid TOML, fix it first: {message}", path.display())
            }
            EditError::NotFound { name, existing } if existing.is_empty() => {
                write!(f, "no trunk group {name:?} (no [[trunk_group]] is defined)")
            }
            EditError::NotFound { name, existing } => {
                write!(f, "no trunk group {name:?} (trunk groups: {})", existing.join(", "))
            }
            EditError::Exists { name, file } => {
                write!(f, "trunk group {name:?} already exists in {}", file.display())
            }
            EditError::Routed { name, prefixes } => write!(
                f,
                "trunk group {name:?} is used by route{} with prefix {}: change or remove {} \
                 first",
                if prefixes.len() == 1 { "" } else { "s" },
                prefixes.join(", "),
                if prefixes.len() == 1 { "that route" } else { "those routes" }
            ),
            EditError::BadSetting(m) => f.write_str(m),
            EditError::Invalid(errors) => {
                writeln!(
                    f,
                    "the change was refused, the file is unchanged (positions are in the file \
                     as it would be after the change):"
                )?;
                write!(f, "{errors}")
            }
        }
    }
}

impl std::error::Error for EditError {}

/// What a successful edit did.
#[derive(Debug, Clone, PartialEq)]
pub struct EditOutcome {
    /// The file that was rewritten.
    pub file: PathBuf,
    /// The configuration as it now is (loaded from the new text).
    pub config: Config,
    /// Other changes made so the result validates (span framing), one sentence each.
    pub notes: Vec<String>,
}

/// Split a `key=value` argument.
///
/// # Errors
/// [`EditError::BadSetting`] when there is no `=` or the key is not in [`TRUNK_KEYS`].
pub fn parse_setting(arg: &str) -> Result<(String, String), EditError> {
    let Some((k, v)) = arg.split_once('=') else {
        return Err(EditError::BadSetting(format!(
            "{arg:?} is not key=value (keys: {})",
            TRUNK_KEYS.join(", ")
        )));
    };
    let key = k.trim().replace('-', "_");
    check_key(&key)?;
    Ok((key, v.trim().to_string()))
}

fn check_key(key: &str) -> Result<(), EditError> {
    if TRUNK_KEYS.contains(&key) {
        Ok(())
    } else if key == "name" {
        Err(EditError::BadSetting(
            "the name identifies the trunk group and cannot be set; add a new group and remove \
             the old one"
                .into(),
        ))
    } else {
        Err(EditError::BadSetting(format!(
            "unknown trunk group setting {key:?} (settings: {})",
            TRUNK_KEYS.join(", ")
        )))
    }
}

/// The TOML value of a setting given on the command line; `None` removes the key.
fn setting_value(key: &str, raw: &str) -> Result<Option<Value>, EditError> {
    if raw.is_empty() && OPTIONAL_KEYS.contains(&key) {
        return Ok(None);
    }
    Ok(Some(match key {
        "ports" => {
            let mut a = Array::new();
            for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                a.push(p);
            }
            Value::Array(a)
        }
        "fax_detect_s" => {
            let n: i64 = raw.parse().map_err(|_| {
                EditError::BadSetting(format!(
                    "fax_detect_s = {raw:?}: expected a whole number of seconds"
                ))
            })?;
            Value::from(n)
        }
        // Enumerations: accept the spellings with '-' and write the canonical one.
        "signalling" | "hunt" | "switch_type" | "presentation" => {
            Value::from(raw.to_ascii_lowercase().replace('-', "_"))
        }
        _ => Value::from(raw),
    }))
}

/// Set `key` of `table` keeping the decoration (spacing, trailing comment) of an old value.
fn set_key(table: &mut Table, key: &str, value: Option<Value>) {
    match value {
        None => {
            table.remove(key);
        }
        Some(mut v) => {
            if let Some(old) = table.get(key).and_then(Item::as_value) {
                *v.decor_mut() = old.decor().clone();
            }
            table.insert(key, Item::Value(v));
        }
    }
}

fn trunk_names(doc: &DocumentMut) -> Vec<String> {
    doc.get("trunk_group")
        .and_then(Item::as_array_of_tables)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("name").and_then(Item::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn trunk_index(doc: &DocumentMut, name: &str) -> Option<usize> {
    trunk_names(doc).iter().position(|n| n == name)
}

/// Apply `edit` to the text of one file. `routes` are the prefixes and trunk groups of every
/// route of the whole configuration (for `remove`). Returns the new text and notes on extra
/// changes (span framing).
///
/// # Errors
/// Syntax errors, unknown names, routed groups, bad settings. The result is not validated:
/// [`apply`] does that.
pub fn edit_text(
    text: &str,
    file: &Path,
    edit: &TrunkEdit,
    routes: &[(String, String)],
) -> Result<(String, Vec<String>), EditError> {
    let mut doc: DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| EditError::Syntax {
            path: file.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
    let mut notes = Vec::new();
    match edit {
        TrunkEdit::Add { name, settings } => {
            if trunk_index(&doc, name).is_some() {
                return Err(EditError::Exists { name: name.clone(), file: file.to_path_buf() });
            }
            let mut t = Table::new();
            t.insert("name", toml_edit::value(name.as_str()));
            for (k, v) in settings {
                check_key(k)?;
                set_key(&mut t, k, setting_value(k, v)?);
            }
            t.decor_mut().set_prefix("\n");
            let item = doc
                .entry("trunk_group")
                .or_insert(Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
            let Some(arr) = item.as_array_of_tables_mut() else {
                return Err(EditError::BadSetting(format!(
                    "{}: trunk_group is not written as [[trunk_group]] tables; edit it by hand",
                    file.display()
                )));
            };
            arr.push(t);
            fix_span_framing(&mut doc, name, &mut notes);
        }
        TrunkEdit::Set { name, settings } => {
            let Some(i) = trunk_index(&doc, name) else {
                return Err(EditError::NotFound {
                    name: name.clone(),
                    existing: trunk_names(&doc),
                });
            };
            let arr = doc["trunk_group"].as_array_of_tables_mut().expect("checked above");
            let t = arr.get_mut(i).expect("index found above");
            for (k, v) in settings {
                check_key(k)?;
                set_key(t, k, setting_value(k, v)?);
            }
            fix_span_framing(&mut doc, name, &mut notes);
        }
        TrunkEdit::Remove { name } => {
            let Some(i) = trunk_index(&doc, name) else {
                return Err(EditError::NotFound {
                    name: name.clone(),
                    existing: trunk_names(&doc),
                });
            };
            let prefixes: Vec<String> =
                routes.iter().filter(|(_, g)| g == name).map(|(p, _)| p.clone()).collect();
            if !prefixes.is_empty() {
                return Err(EditError::Routed { name: name.clone(), prefixes });
            }
            let arr = doc["trunk_group"].as_array_of_tables_mut().expect("checked above");
            arr.remove(i);
            if arr.is_empty() {
                doc.remove("trunk_group");
            }
        }
    }
    Ok((doc.to_string(), notes))
}

/// After the trunk group `name` was added or changed: give its spans the framing its
/// signalling needs (CAS for R2, CCS for PRI), changing the framing of a `[[span]]` entry of
/// this file or adding an entry for a span that has none.
fn fix_span_framing(doc: &mut DocumentMut, name: &str, notes: &mut Vec<String>) {
    let Some(i) = trunk_index(doc, name) else { return };
    let Some(t) = doc["trunk_group"].as_array_of_tables().and_then(|a| a.get(i)) else { return };
    let sig_text = t.get("signalling").and_then(Item::as_str).unwrap_or("fxo").to_string();
    let Ok(sig) = serde_json::from_value::<TrunkSignalling>(serde_json::Value::String(sig_text))
    else {
        return; // the loader reports the bad word
    };
    if !sig.uses_spans() {
        return;
    }
    let want = if sig == TrunkSignalling::R2China { "cas" } else { "ccs" };
    let spans: Vec<PortRef> = t
        .get("ports")
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(|s| s.parse::<PortRef>().ok()))
                .filter(|p| p.kind == PortKind::Span)
                .collect()
        })
        .unwrap_or_default();
    for port in spans {
        let entries = doc.get_mut("span").and_then(Item::as_array_of_tables_mut);
        let existing = entries.and_then(|a| {
            a.iter_mut().find(|s| {
                s.get("card").and_then(Item::as_str) == Some(port.card.as_str())
                    && s.get("span").and_then(Item::as_integer) == Some(i64::from(port.index))
            })
        });
        match existing {
            Some(s) => {
                let framing = s.get("framing").and_then(Item::as_str).unwrap_or("ccs");
                if framing != want {
                    set_key(s, "framing", Some(Value::from(want)));
                    notes.push(format!(
                        "set framing = \"{want}\" in the [[span]] entry of {port} ({} needs it)",
                        sig.as_str()
                    ));
                }
            }
            // No entry: the default framing is CCS; R2 needs an entry saying CAS.
            None if want == "cas" => {
                let mut s = Table::new();
                s.insert("card", toml_edit::value(port.card.as_str()));
                s.insert("span", toml_edit::value(i64::from(port.index)));
                s.insert("framing", toml_edit::value(want));
                s.decor_mut().set_prefix("\n");
                let item = doc
                    .entry("span")
                    .or_insert(Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
                if let Some(a) = item.as_array_of_tables_mut() {
                    a.push(s);
                    notes.push(format!(
                        "added a [[span]] entry for {port} with framing = \"cas\" (r2_china needs it)"
                    ));
                }
            }
            None => {}
        }
    }
}

static SCRATCH: AtomicU64 = AtomicU64::new(0);

/// A sibling of `path` whose name cannot be mistaken for a configuration file (no `.toml`
/// ending, so an include directory never picks it up).
fn sibling(path: &Path, what: &str) -> PathBuf {
    let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.cardpbx-{what}-{}-{n}", std::process::id()))
}

fn io_err(path: &Path, e: std::io::Error) -> EditError {
    EditError::Io { path: path.to_path_buf(), message: e.to_string() }
}

/// Replace `path` by `text` atomically: a sibling file is written, flushed to disk and renamed
/// over it, keeping the original's permissions. Readers see the old or the new file, never a
/// part.
///
/// # Errors
/// [`EditError::Io`]; the original is untouched then.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), EditError> {
    let tmp = sibling(path, "new");
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, e)
    })
}

/// Load the configuration whose main file `main` would have the text `text`, with the normal
/// loader: the text goes to a scratch file next to `main` (so relative paths resolve the same),
/// which is loaded and removed. Errors name `main`, not the scratch file.
///
/// # Errors
/// The loader's errors; [`EditError::Io`] when the scratch file cannot be written.
pub fn check_text(main: &Path, text: &str) -> Result<Config, EditError> {
    let tmp = sibling(main, "check");
    std::fs::write(&tmp, text).map_err(|e| io_err(&tmp, e))?;
    let result = Config::load(&tmp);
    let _ = std::fs::remove_file(&tmp);
    let tmp_name = tmp.display().to_string();
    let main_name = main.display().to_string();
    result.map_err(|errors| {
        EditError::Invalid(ConfigErrors(
            errors
                .0
                .into_iter()
                .map(|e| ConfigError {
                    file: if e.file == tmp_name { main_name.clone() } else { e.file },
                    ..e
                })
                .collect(),
        ))
    })
}

/// Apply `edit` to the configuration file `path`: edit the main file's `[[trunk_group]]`
/// tables, check the whole result with the loader, and only then replace the file atomically.
///
/// Trunk groups defined in the include directory are not edited here: `set` and `remove` of
/// one say which file to edit by hand.
///
/// # Errors
/// Any [`EditError`]; the file is untouched then.
pub fn apply(path: &Path, edit: &TrunkEdit) -> Result<EditOutcome, EditError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    // The merged configuration as it stands, for routes and groups in included files.
    let current = Config::load(path).ok();
    let routes: Vec<(String, String)> = match &current {
        Some(cfg) => cfg.routes.iter().map(|r| (r.prefix.clone(), r.trunk_group.clone())).collect(),
        None => routes_of_text(&text),
    };
    if let (Some(cfg), TrunkEdit::Set { name, .. } | TrunkEdit::Remove { name }) = (&current, edit)
    {
        let doc: Option<DocumentMut> = text.parse().ok();
        let in_main = doc.as_ref().is_some_and(|d| trunk_index(d, name).is_some());
        if !in_main && cfg.trunk_groups.iter().any(|t| &t.name == name) {
            return Err(EditError::BadSetting(format!(
                "trunk group {name:?} is defined in a file of the include directory ({}), which \
                 the trunk commands do not edit: change it there by hand",
                cfg.system.include_dir.as_deref().unwrap_or(Path::new("?")).display()
            )));
        }
    }
    if let (Some(cfg), TrunkEdit::Add { name, .. }) = (&current, edit) {
        if cfg.trunk_groups.iter().any(|t| &t.name == name) {
            return Err(EditError::Exists {
                name: name.clone(),
                file: cfg.system.include_dir.clone().unwrap_or_else(|| path.to_path_buf()),
            });
        }
    }
    let (new_text, notes) = edit_text(&text, path, edit, &routes)?;
    let config = check_text(path, &new_text)?;
    write_atomic(path, &new_text)?;
    Ok(EditOutcome { file: path.to_path_buf(), config, notes })
}

/// Route prefixes and trunk groups read straight from a file's text (when the configuration
/// does not load as it stands).
fn routes_of_text(text: &str) -> Vec<(String, String)> {
    let Ok(doc) = text.parse::<DocumentMut>() else { return Vec::new() };
    doc.get("route")
        .and_then(Item::as_array_of_tables)
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let p = r.get("prefix").and_then(Item::as_str)?;
                    let g = r.get("trunk_group").and_then(Item::as_str)?;
                    Some((p.to_string(), g.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"# cardpbx test configuration
# Keep this comment exactly.
[system]
name = "edit"   # the box name
control_socket = "/tmp/cardpbx-edit-test.sock"

[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 4
fxo_ports = 4
e1_spans = 2

[[extension]]
number = "2001"
port = "sim0/fxs1"

[[extension]]
number = "2002"
port = "sim0/fxs2"

# Exchange lines.
[[trunk_group]]
name = "pstn"
ports = ["sim0/fxo1", "sim0/fxo2"]   # two lines
incoming = "2001"
hunt = "ascending"

[[trunk_group]]
name = "spare"   # kept for later
ports = ["sim0/fxo3"]

# Outgoing calls.
[[route]]
prefix = "9"            # outside line
trunk_group = "pstn"
strip = 1
"#;

    fn setup(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cardpbx.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The lines of `a` that are not in `b`, in order (a poor man's diff).
    fn lines_only_in(a: &str, b: &str) -> Vec<String> {
        let bl: Vec<&str> = b.lines().collect();
        a.lines().filter(|l| !bl.contains(l)).map(str::to_string).collect()
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn set_changes_only_the_keys_given_and_keeps_every_comment() {
        let (dir, path) = setup(BASE);
        let edit = TrunkEdit::Set {
            name: "pstn".into(),
            settings: kv(&[("hunt", "round-robin"), ("incoming", "2002")]),
        };
        let out = apply(&path, &edit).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            lines_only_in(&new, BASE),
            vec!["incoming = \"2002\"".to_string(), "hunt = \"round_robin\"".to_string()]
        );
        assert_eq!(
            lines_only_in(BASE, &new),
            vec!["incoming = \"2001\"".to_string(), "hunt = \"ascending\"".to_string()]
        );
        // Everything before the edited table is byte-for-byte the same, and so is everything
        // from the next table on.
        let cut = BASE.find("# Exchange lines.").unwrap();
        assert_eq!(&new[..cut], &BASE[..cut]);
        let tail = BASE.find("[[trunk_group]]\nname = \"spare\"").unwrap();
        assert!(new.ends_with(&BASE[tail..]));
        assert_eq!(out.config.trunk_groups[0].incoming.as_deref(), Some("2002"));
        assert_eq!(dir_entries(dir.path()), vec!["cardpbx.toml"], "no scratch file left");
    }

    #[test]
    fn add_appends_after_the_last_trunk_group_and_before_the_routes() {
        let (_dir, path) = setup(BASE);
        let edit = TrunkEdit::Add {
            name: "pstn2".into(),
            settings: kv(&[("ports", "sim0/fxo4"), ("hunt", "descending")]),
        };
        apply(&path, &edit).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        let added =
            "\n[[trunk_group]]\nname = \"pstn2\"\nports = [\"sim0/fxo4\"]\nhunt = \"descending\"\n";
        // Inserted right after the last group's last line; the blank line and comment before
        // the routes stay with the routes.
        let at = BASE.find("\n# Outgoing calls.").unwrap();
        assert_eq!(new, format!("{}{added}{}", &BASE[..at], &BASE[at..]));
        let cfg = Config::load(&path).unwrap();
        assert_eq!(
            cfg.trunk_groups.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["pstn", "spare", "pstn2"]
        );
    }

    #[test]
    fn bad_value_is_refused_with_the_loaders_message_and_the_file_is_untouched() {
        let (dir, path) = setup(BASE);
        let edit = TrunkEdit::Set { name: "pstn".into(), settings: kv(&[("hunt", "sideways")]) };
        let err = apply(&path, &edit).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EditError::Invalid(_)), "{msg}");
        assert!(msg.contains(&format!("{}:", path.display())), "names the real file: {msg}");
        assert!(msg.contains("trunk_group[0].hunt"), "names the key: {msg}");
        assert!(msg.contains("sideways") && msg.contains("round_robin"), "{msg}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), BASE);
        assert_eq!(dir_entries(dir.path()), vec!["cardpbx.toml"]);

        // A semantic error (a port that does not exist) comes with file:line:col.
        let edit = TrunkEdit::Set { name: "spare".into(), settings: kv(&[("ports", "sim0/fxo9")]) };
        let msg = apply(&path, &edit).unwrap_err().to_string();
        assert!(msg.contains("trunk_group[1].ports[0]") && msg.contains("fxo9"), "{msg}");
        let loc = format!("{}:", path.display());
        let after = &msg[msg.find(&loc).unwrap() + loc.len()..];
        assert!(after.starts_with(|c: char| c.is_ascii_digit()), "line number given: {msg}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), BASE);
    }

    #[test]
    fn unknown_keys_and_names_are_refused_before_anything_is_written() {
        let (_dir, path) = setup(BASE);
        assert!(parse_setting("colour=red").unwrap_err().to_string().contains("hunt"));
        assert!(parse_setting("hunt").is_err());
        assert_eq!(parse_setting("fax-detect-s=7").unwrap(), ("fax_detect_s".into(), "7".into()));
        let e = apply(&path, &TrunkEdit::Set { name: "nope".into(), settings: vec![] });
        assert_eq!(
            e.unwrap_err().to_string(),
            "no trunk group \"nope\" (trunk groups: pstn, spare)"
        );
        let e = apply(&path, &TrunkEdit::Add { name: "pstn".into(), settings: vec![] });
        assert!(matches!(e, Err(EditError::Exists { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), BASE);
    }

    #[test]
    fn remove_is_refused_while_a_route_uses_the_group() {
        let (_dir, path) = setup(BASE);
        let err = apply(&path, &TrunkEdit::Remove { name: "pstn".into() }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "trunk group \"pstn\" is used by route with prefix 9: change or remove that route \
             first"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), BASE);
        // An unrouted group goes, and nothing else changes.
        apply(&path, &TrunkEdit::Remove { name: "spare".into() }).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            lines_only_in(BASE, &new),
            vec![
                "name = \"spare\"   # kept for later".to_string(),
                "ports = [\"sim0/fxo3\"]".to_string()
            ]
        );
        assert!(
            new.contains("# Outgoing calls.\n[[route]]\nprefix = \"9\"            # outside line")
        );
    }

    #[test]
    fn r2_signalling_sets_cas_framing_on_its_spans() {
        let text = format!(
            "{BASE}\n[[span]]\ncard = \"sim0\"\nspan = 1\nframing = \"ccs\"  # PRI for now\n"
        );
        let (_dir, path) = setup(&text);
        let edit = TrunkEdit::Add {
            name: "r2".into(),
            settings: kv(&[
                ("signalling", "r2-china"),
                ("ports", "sim0/span1,sim0/span2"),
                ("channels", "1-15,17-31"),
            ]),
        };
        let out = apply(&path, &edit).unwrap();
        assert_eq!(out.notes.len(), 2, "{:?}", out.notes);
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(new.contains("framing = \"cas\"  # PRI for now"), "{new}");
        assert!(new.contains("[[span]]\ncard = \"sim0\"\nspan = 2\nframing = \"cas\""), "{new}");
        let cfg = out.config;
        assert_eq!(cfg.trunk_groups[2].signalling, TrunkSignalling::R2China);
        assert!(cfg.spans.iter().all(|s| s.framing == super::super::SpanFraming::Cas));
        // Back to PRI: the framing follows.
        let edit = TrunkEdit::Set { name: "r2".into(), settings: kv(&[("signalling", "pri_cpe")]) };
        let out = apply(&path, &edit).unwrap();
        assert!(out.config.spans.iter().all(|s| s.framing == super::super::SpanFraming::Ccs));
    }

    #[test]
    fn atomic_write_replaces_the_file_in_one_step_and_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, path) = setup(BASE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        // A reader holding the old file keeps reading the old text: the new one is a new inode.
        let mut old = std::fs::File::open(&path).unwrap();
        write_atomic(&path, "new text\n").unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut old, &mut s).unwrap();
        assert_eq!(s, BASE);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new text\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(dir_entries(dir.path()), vec!["cardpbx.toml"]);
        // A write that cannot happen leaves the original alone.
        let missing = dir.path().join("no-such-dir").join("x.toml");
        assert!(matches!(write_atomic(&missing, "x"), Err(EditError::Io { .. })));
    }

    #[test]
    fn groups_in_the_include_directory_are_checked_but_not_edited() {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("conf.d");
        std::fs::create_dir(&inc).unwrap();
        let main = BASE.replace(
            "control_socket = \"/tmp/cardpbx-edit-test.sock\"\n",
            "control_socket = \"/tmp/cardpbx-edit-test.sock\"\ninclude_dir = \"conf.d\"\n",
        );
        let path = dir.path().join("cardpbx.toml");
        std::fs::write(&path, &main).unwrap();
        std::fs::write(
            inc.join("more.toml"),
            "[[trunk_group]]\nname = \"extra\"\nports = [\"sim0/fxo4\"]\n",
        )
        .unwrap();
        let e = apply(
            &path,
            &TrunkEdit::Set { name: "extra".into(), settings: kv(&[("hunt", "descending")]) },
        )
        .unwrap_err();
        assert!(e.to_string().contains("include directory"), "{e}");
        // A new group on a port an included group uses is refused by the loader.
        let e = apply(
            &path,
            &TrunkEdit::Add { name: "x".into(), settings: kv(&[("ports", "sim0/fxo4")]) },
        )
        .unwrap_err();
        assert!(e.to_string().contains("is already used by trunk group"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), main);
    }
}
