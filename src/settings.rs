//! Loads [`Settings`] in layers (config crate): the embedded defaults, then
//! `config/sono.toml` in the working directory if present, or the file given
//! with `--config`, then `SONO_…` environment variables (`SONO_RTMP__LISTEN`,
//! sections and keys joined by a double underscore; lists comma-separated).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use config::{Config, Environment, File, FileFormat};
use sono_actors::Settings;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_FILE: &str = "config/sono.toml";

pub fn load(explicit: Option<&Path>) -> anyhow::Result<(Settings, Option<PathBuf>)> {
    let defaults = toml::to_string(&Settings::default()).context("serialising the defaults")?;
    let mut builder = Config::builder().add_source(File::from_str(&defaults, FileFormat::Toml));
    let file = match explicit {
        Some(path) => {
            if !path.is_file() {
                bail!("configuration file {} does not exist", path.display());
            }
            Some(path.to_path_buf())
        }
        None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()),
    };
    if let Some(path) = &file {
        builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml));
    }
    builder = builder.add_source(
        Environment::with_prefix("SONO")
            .prefix_separator("_")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("rtmp.apps")
            .with_list_parse_key("sip.dial_plan.allow")
            .with_list_parse_key("sip.dial_plan.deny")
            .with_list_parse_key("sip.registrars")
            .with_list_parse_key("sip.auth_realms")
            .with_list_parse_key("media.codecs")
            .try_parsing(true),
    );
    let settings: Settings = builder
        .build()
        .context("reading the settings")?
        .try_deserialize()
        .context("invalid settings")?;
    if let Err(e) = settings.validate() {
        bail!("invalid settings: {e}");
    }
    Ok((settings, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_matches_the_embedded_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_FILE);
        let text = std::fs::read_to_string(&path).expect("config/sono.toml is shipped");
        let from_file: Settings = toml::from_str(&text).expect("config/sono.toml parses");
        assert_eq!(
            from_file,
            Settings::default(),
            "config/sono.toml and the defaults disagree"
        );
    }

    #[test]
    fn a_file_overrides_the_defaults_and_bad_values_are_refused() {
        let dir = std::env::temp_dir().join(format!("sono-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[rtmp]\nlisten = \"127.0.0.1:19350\"\nidle_timeout = \"90s\"\n",
        )
        .unwrap();
        let (s, _) = load(Some(&good)).unwrap();
        assert_eq!(s.rtmp.listen.port(), 19350);
        assert_eq!(s.rtmp.idle_timeout.as_secs(), 90);
        assert_eq!(s.http, Settings::default().http);

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[rtmp]\nmax_conections = 5\n").unwrap();
        assert!(load(Some(&bad)).is_err(), "a misspelt key is an error");
        std::fs::write(&bad, "[rtmp]\nchunk_size = 1\n").unwrap();
        assert!(
            load(Some(&bad)).is_err(),
            "a value out of range is an error"
        );
        assert!(load(Some(&dir.join("missing.toml"))).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
