//! Loading a configuration: reading the main file and its include directory, turning TOML
//! syntax and type errors into [`ConfigError`]s with file, line, column and key, and running the
//! semantic checks of [`super::check`] with the same precision.
//!
//! Source positions come from a second, spanned parse of each file ([`toml::de::DeTable`]): the
//! typed model stays free of span wrappers, and an error's dotted key path (`extension[2].port`)
//! is looked up in the spanned tree to find its line.

use super::check::{self, Loc, Seg};
use super::model::{
    CardConfig, Config, ExtensionConfig, HuntGroupConfig, RouteConfig, SpanSettings,
    TrunkGroupConfig,
};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One problem in a configuration, located as precisely as the problem allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as it was named to the loader.
    pub file: String,
    /// 1-based line, or 0 when the problem has no position (an unreadable file).
    pub line: usize,
    /// 1-based column in characters, or 0 with `line`.
    pub column: usize,
    /// Dotted key path, `extension[2].port` (array indices count from 0 within the file);
    /// empty for syntax errors.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// All problems found in a configuration (at least one), in file and line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual errors.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// What a file in the include directory may contain: only list entries, which are appended to
/// those of the main file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncludeFile {
    #[serde(default)]
    card: Vec<CardConfig>,
    #[serde(default)]
    span: Vec<SpanSettings>,
    #[serde(default)]
    extension: Vec<ExtensionConfig>,
    #[serde(default)]
    hunt_group: Vec<HuntGroupConfig>,
    #[serde(default)]
    trunk_group: Vec<TrunkGroupConfig>,
    #[serde(default)]
    route: Vec<RouteConfig>,
}

/// A file that took part in a configuration.
struct Source {
    name: String,
    text: String,
}

/// Where each entry of the merged lists came from: file number and index in that file.
#[derive(Debug, Default, Clone)]
pub(super) struct Origins {
    pub(super) cards: Vec<(usize, usize)>,
    pub(super) spans: Vec<(usize, usize)>,
    pub(super) extensions: Vec<(usize, usize)>,
    pub(super) hunt_groups: Vec<(usize, usize)>,
    pub(super) trunk_groups: Vec<(usize, usize)>,
    pub(super) routes: Vec<(usize, usize)>,
}

impl Origins {
    /// Origins for a configuration that came from one file (or from no file at all).
    fn single(cfg: &Config) -> Self {
        let seq = |n: usize| (0..n).map(|i| (0, i)).collect();
        Origins {
            cards: seq(cfg.cards.len()),
            spans: seq(cfg.spans.len()),
            extensions: seq(cfg.extensions.len()),
            hunt_groups: seq(cfg.hunt_groups.len()),
            trunk_groups: seq(cfg.trunk_groups.len()),
            routes: seq(cfg.routes.len()),
        }
    }
}

impl Config {
    /// Read, merge and check the configuration in `path` (and its include directory).
    ///
    /// # Errors
    /// Every problem found, each naming file, line, column and key. Syntax and type errors stop
    /// at the first one per file; semantic errors are all reported together.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the configuration: {e}"),
        })?;
        Self::parse_with_base(text, name, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parse and check a configuration given as text; `file_name` is used in error messages and
    /// its directory is the base of a relative `system.include_dir`.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse_str(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
        let base = Path::new(file_name).parent().unwrap_or(Path::new("."));
        Self::parse_with_base(text.to_string(), file_name.to_string(), base)
    }

    /// Run the semantic checks on a configuration built in code (or changed at run time).
    /// Errors carry the key path (indices into the merged lists) but no file position.
    pub fn validate(&self) -> Vec<ConfigError> {
        let origins = Origins::single(self);
        check::check(self, &origins)
            .into_iter()
            .map(|(loc, message)| ConfigError {
                file: "<config>".to_string(),
                line: 0,
                column: 0,
                key: loc.key_string(),
                message,
            })
            .collect()
    }

    fn parse_with_base(text: String, name: String, base: &Path) -> Result<Config, ConfigErrors> {
        let mut config: Config = toml::from_str(&text).map_err(|e| toml_error(&name, &text, &e))?;
        let mut origins = Origins::single(&config);
        let mut sources = vec![Source { name, text }];

        if let Some(dir) = config.system.include_dir.clone() {
            let dir = if dir.is_absolute() { dir } else { base.join(dir) };
            for path in include_files(&dir).map_err(|message| {
                locate(&sources, &Loc::top(&["system", "include_dir"]), message)
            })? {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                    file: name.clone(),
                    line: 0,
                    column: 0,
                    key: String::new(),
                    message: format!("cannot read included file: {e}"),
                })?;
                let inc: IncludeFile =
                    toml::from_str(&text).map_err(|e| include_error(&name, &text, &e))?;
                let file = sources.len();
                append(&mut config.cards, &mut origins.cards, inc.card, file);
                append(&mut config.spans, &mut origins.spans, inc.span, file);
                append(&mut config.extensions, &mut origins.extensions, inc.extension, file);
                append(&mut config.hunt_groups, &mut origins.hunt_groups, inc.hunt_group, file);
                append(&mut config.trunk_groups, &mut origins.trunk_groups, inc.trunk_group, file);
                append(&mut config.routes, &mut origins.routes, inc.route, file);
                sources.push(Source { name, text });
            }
        }

        let problems = check::check(&config, &origins);
        if problems.is_empty() {
            return Ok(config);
        }
        let mut errors: Vec<(usize, ConfigError)> = problems
            .iter()
            .map(|(loc, message)| (loc.file, locate(&sources, loc, message.clone())))
            .collect();
        errors.sort_by_key(|(file, e)| (*file, e.line, e.column));
        Err(ConfigErrors(errors.into_iter().map(|(_, e)| e).collect()))
    }
}

fn append<T>(list: &mut Vec<T>, origins: &mut Vec<(usize, usize)>, items: Vec<T>, file: usize) {
    for (i, item) in items.into_iter().enumerate() {
        list.push(item);
        origins.push((file, i));
    }
}

/// The `*.toml` files of an include directory, sorted by name.
fn include_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read include directory {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("cannot read include directory {}: {e}", dir.display()))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// Turn a toml syntax or type error into a located error.
fn toml_error(name: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let span = e.span();
    let (line, column) = span.as_ref().map_or((0, 0), |s| line_col(text, s.start));
    let key = match (&span, DeTable::parse(text)) {
        (Some(s), Ok(doc)) => {
            let root = Spanned::new(doc.span(), DeValue::Table(doc.into_inner()));
            find_path(&root, s.start, &mut Vec::new()).map(|p| seg_string(&p)).unwrap_or_default()
        }
        _ => String::new(),
    };
    ConfigError { file: name.to_string(), line, column, key, message: tidy_message(e.message()) }
}

/// As [`toml_error`], with a hint about what an included file may hold.
fn include_error(name: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let mut err = toml_error(name, text, e);
    if !err.key.contains('.') && !err.key.contains('[') && err.message.starts_with("unknown field")
    {
        err.message = format!(
            "{} (an included file may only add [[card]], [[span]], [[extension]], \
             [[hunt_group]], [[trunk_group]] and [[route]] entries)",
            err.message
        );
    }
    err
}

/// Make serde's messages read like the TOML file: one line, TOML type names instead of Rust's.
fn tidy_message(msg: &str) -> String {
    let mut m = msg.trim_end().replace('\n', " ");
    for (rust, toml) in [
        ("expected u8", "expected an integer from 0 to 255"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected a sequence", "expected an array"),
        ("expected a borrowed string", "expected a string"),
    ] {
        if m.ends_with(rust) {
            m.truncate(m.len() - rust.len());
            m.push_str(toml);
        }
    }
    m
}

fn contains(span: &Range<usize>, pos: usize) -> bool {
    span.start <= pos && (pos < span.end || (span.is_empty() && pos == span.start))
}

/// The deepest key path in `v` whose key or value span contains `pos`.
fn find_path(v: &Spanned<DeValue<'_>>, pos: usize, path: &mut Vec<Seg>) -> Option<Vec<Seg>> {
    match v.get_ref() {
        DeValue::Table(t) => {
            for (k, val) in t.iter() {
                path.push(Seg::Key(k.get_ref().to_string()));
                if contains(&k.span(), pos) {
                    return Some(path.clone());
                }
                if let Some(found) = find_path(val, pos, path) {
                    return Some(found);
                }
                if contains(&val.span(), pos) {
                    return Some(path.clone());
                }
                path.pop();
            }
            None
        }
        DeValue::Array(a) => {
            for (i, val) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                if let Some(found) = find_path(val, pos, path) {
                    return Some(found);
                }
                if contains(&val.span(), pos) {
                    return Some(path.clone());
                }
                path.pop();
            }
            None
        }
        _ => None,
    }
}

/// Render a key path the way errors show it: `extension[2].port`.
pub(super) fn seg_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The span of the deepest existing node along `path` (a key that was left out and took its
/// default is reported at its table).
fn span_of(text: &str, path: &[Seg]) -> Option<Range<usize>> {
    let doc = DeTable::parse(text).ok()?;
    let root = Spanned::new(doc.span(), DeValue::Table(doc.into_inner()));
    let mut node = &root;
    let mut best: Option<Range<usize>> = None;
    for seg in path {
        let next = match (seg, node.get_ref()) {
            (Seg::Key(k), DeValue::Table(t)) => t.get(k.as_str()),
            (Seg::Index(i), DeValue::Array(a)) => a.get(*i),
            _ => None,
        };
        match next {
            Some(n) => {
                node = n;
                best = Some(n.span());
            }
            None => break,
        }
    }
    best
}

/// Resolve a semantic problem's location in its source file.
fn locate(sources: &[Source], loc: &Loc, message: String) -> ConfigError {
    let src = &sources[loc.file.min(sources.len() - 1)];
    let (line, column) =
        span_of(&src.text, &loc.path).map_or((1, 1), |s| line_col(&src.text, s.start));
    ConfigError { file: src.name.clone(), line, column, key: loc.key_string(), message }
}
