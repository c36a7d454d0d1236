//! Loading manifests for `validate` and `plan`: files, directories (recursively, `*.yaml` and
//! `*.yml`) and `-` for stdin, each split into YAML documents that remember the line of every
//! field, so an error can point at the line to fix.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// One YAML document, as JSON, with where it came from.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file it was read from (`<stdin>` for `-`).
    pub source: String,
    /// The line the document starts on.
    pub line: u64,
    /// Its content.
    pub value: Value,
    /// The line of each field, by path (`spec.products[1]`).
    lines: BTreeMap<String, u64>,
}

impl Document {
    /// The line of `path`, or of its nearest ancestor that is written in the document.
    pub fn line_of(&self, path: &str) -> u64 {
        let mut path = path.trim_start_matches('.');
        loop {
            if let Some(line) = self.lines.get(path) {
                return *line;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.line,
            }
        }
    }

    /// A top-level string field (`apiVersion`, `kind`).
    pub fn top(&self, field: &str) -> Option<&str> {
        self.value.get(field).and_then(Value::as_str)
    }

    /// `metadata.name`, when it is a string.
    pub fn name(&self) -> Option<&str> {
        self.value.pointer("/metadata/name").and_then(Value::as_str)
    }

    /// `metadata.namespace`, when it is a string.
    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    /// `file:line` of `path` in this document.
    pub fn at(&self, path: &str) -> String {
        format!("{}:{}", self.source, self.line_of(path))
    }
}

/// A file that could not be read or parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file (or directory) concerned.
    pub source: String,
    /// The line of a YAML syntax error.
    pub line: Option<u64>,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.source, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

/// The path of `key` under `parent`, as the API server writes it: `spec.acqp`, or
/// `metadata.annotations[example.com/x]` when the key is not a plain identifier.
pub fn field_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (parent.is_empty(), plain) {
        (true, _) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (false, false) => format!("{parent}[{key}]"),
    }
}

/// Reads every document under `paths`; files that fail do not stop the others.
pub fn load(paths: &[PathBuf]) -> (Vec<Document>, Vec<LoadError>) {
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let files = if path.as_os_str() == "-" {
            vec![path.clone()]
        } else {
            match yaml_files(path) {
                Ok(files) => files,
                Err(error) => {
                    errors.push(LoadError {
                        source: path.display().to_string(),
                        line: None,
                        message: error,
                    });
                    continue;
                }
            }
        };
        for file in files {
            match read(&file).and_then(|(source, text)| parse(&source, &text)) {
                Ok(found) => documents.extend(found),
                Err(error) => errors.push(error),
            }
        }
    }
    (documents, errors)
}

/// The YAML files at `path`: the file itself, or those below a directory, sorted.
fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut found = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|e| format!("cannot list: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list: {e}"))?;
        let child = entry.path();
        if child.is_dir() {
            found.extend(yaml_files(&child)?);
        } else if child
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            found.push(child);
        }
    }
    found.sort();
    Ok(found)
}

fn read(path: &Path) -> Result<(String, String), LoadError> {
    let (source, text) = if path.as_os_str() == "-" {
        let mut text = String::new();
        let read = std::io::stdin().read_to_string(&mut text);
        ("<stdin>".to_owned(), read.map(|_| text))
    } else {
        (path.display().to_string(), std::fs::read_to_string(path))
    };
    text.map(|text| (source.clone(), text))
        .map_err(|e| LoadError {
            source,
            line: None,
            message: format!("cannot read: {e}"),
        })
}

/// Splits `text` into documents; empty and comment-only documents are skipped.
pub fn parse(source: &str, text: &str) -> Result<Vec<Document>, LoadError> {
    let trees = serde_saphyr::from_multiple::<Spanned<Tree>>(text).map_err(|e| LoadError {
        source: source.to_owned(),
        line: e.location().map(|l| l.line()),
        message: format!(
            "not valid YAML: {}",
            e.to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
        ),
    })?;
    Ok(trees
        .into_iter()
        .map(|tree| {
            let mut lines = BTreeMap::new();
            let value = tree.value.into_json("", &mut lines);
            Document {
                source: source.to_owned(),
                line: tree.referenced.line(),
                value,
                lines,
            }
        })
        .collect())
}

/// A YAML node whose children know their location.
enum Tree {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Spanned<Tree>>),
    Map(Vec<(Spanned<String>, Spanned<Tree>)>),
}

impl Tree {
    fn into_json(self, path: &str, lines: &mut BTreeMap<String, u64>) -> Value {
        match self {
            Tree::Null => Value::Null,
            Tree::Bool(b) => Value::Bool(b),
            Tree::Number(n) => Value::Number(n),
            Tree::String(s) => Value::String(s),
            Tree::Seq(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let child = format!("{path}[{i}]");
                        lines.insert(child.clone(), item.referenced.line());
                        item.value.into_json(&child, lines)
                    })
                    .collect(),
            ),
            Tree::Map(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| {
                        let child = field_path(path, &key.value);
                        lines.insert(child.clone(), key.referenced.line());
                        (key.value, value.value.into_json(&child, lines))
                    })
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        // NaN and infinities have no JSON form; the API server rejects them as well.
        Ok(serde_json::Number::from_f64(v).map_or(Tree::Null, Tree::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::String(v.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Tree::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_lines_across_documents() {
        let text =
            "# lead\n---\na: 1\nb:\n  - x\n  - y\n---\n# only a comment\n---\nc: {d: null}\n";
        let docs = parse("t.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line_of("b[1]"), 6);
        assert_eq!(docs[0].line_of("b[1].missing"), 6);
        assert_eq!(docs[1].line_of("c.d"), 10);
        assert_eq!(docs[1].value, serde_json::json!({"c": {"d": null}}));
    }

    #[test]
    fn reports_syntax_errors_with_their_line() {
        let error = parse("bad.yaml", "a: [1\nb: 2\n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.message.starts_with("not valid YAML"), "{error}");
    }

    #[test]
    fn quotes_keys_that_are_not_identifiers() {
        assert_eq!(field_path("spec", "acqp"), "spec.acqp");
        assert_eq!(
            field_path("metadata.annotations", "example.com/x"),
            "metadata.annotations[example.com/x]"
        );
    }
}
