//! Where each running plugin came from: a file of the plugin directory, or a
//! Plugin object. Both sources can be used at once; a name belongs to one
//! of them, and a second claim is refused with an error that says where the
//! name is used already.

use std::{collections::HashMap, fmt, path::PathBuf};

use parking_lot::Mutex;

/// A plugin's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file in the plugin directory.
    File(PathBuf),
    /// A Plugin object (cluster-scoped), by name.
    Object(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "the file {}", path.display()),
            Self::Object(name) => write!(f, "the Plugin object {name}"),
        }
    }
}

/// The plugin names in use, and by which source.
#[derive(Debug, Default)]
pub struct Sources {
    names: Mutex<HashMap<String, Source>>,
}

impl Sources {
    /// Take `name` for `source` (again, if it holds it already).
    ///
    /// # Errors
    /// The source that holds the name, if another one does.
    pub fn claim(&self, name: &str, source: &Source) -> Result<(), Source> {
        let mut names = self.names.lock();
        match names.get(name) {
            Some(holder) if holder != source => Err(holder.clone()),
            _ => {
                names.insert(name.to_string(), source.clone());
                Ok(())
            }
        }
    }

    /// Give `name` up, if `source` holds it.
    pub fn release(&self, name: &str, source: &Source) {
        let mut names = self.names.lock();
        if names.get(name) == Some(source) {
            names.remove(name);
        }
    }

    /// Who holds `name`.
    pub fn holder(&self, name: &str) -> Option<Source> {
        self.names.lock().get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_belongs_to_one_source_until_it_lets_go() {
        let sources = Sources::default();
        let file = Source::File("/plugins/a.wasm".into());
        let object = Source::Object("a".into());
        sources.claim("a", &file).unwrap();
        sources.claim("a", &file).unwrap();
        let holder = sources.claim("a", &object).unwrap_err();
        assert_eq!(holder.to_string(), "the file /plugins/a.wasm");
        sources.release("a", &object);
        assert_eq!(sources.holder("a"), Some(file.clone()));
        sources.release("a", &file);
        sources.claim("a", &object).unwrap();
    }
}
