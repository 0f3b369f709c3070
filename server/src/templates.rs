//! Per-host templates: a file uploaded or attached as a template is rendered for each host
//! before it is sent, with minijinja (Jinja2's syntax, as Ansible's `template` module). A
//! template sees the host's environment as its runs get it (see [`crate::environment`]:
//! global, the script's, its groups', its own; secrets included) by name (`{{ ntp_server }}`),
//! `host` (`name`, `address`, `port`, `groups`) and `facts` (what its agent last reported:
//! `facts.arch`, `facts.model`, …; undefined before its first heartbeat). A name that is not
//! defined is an error, as is text that is not UTF-8; an error names its line, with any
//! secret value in its message masked.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::environment::{Assembled, redact};
use crate::model::{Facts, Host};

/// The largest a rendered file may be (as large as an attachment).
pub const MAX_RENDERED: usize = 64 * 1024 * 1024;

/// Why a template could not be rendered for a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The file is not UTF-8 text.
    #[error("template {0}: not UTF-8 text")]
    NotText(String),
    /// The template is wrong, or names what is not there.
    #[error("template {path}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Render {
        /// The file's path on the hosts.
        path: String,
        /// The line, when known.
        line: Option<usize>,
        /// What is wrong (secret values masked).
        message: String,
    },
    /// Rendered, it is larger than [`MAX_RENDERED`].
    #[error("template {0}: rendered, it is larger than {MAX_RENDERED} bytes")]
    TooLarge(String),
}

/// What a template sees of its host.
#[derive(Serialize)]
struct HostView<'a> {
    name: &'a str,
    address: &'a str,
    port: u16,
    groups: &'a [String],
}

/// Renders `source`, the template of the file `path`, for `host` with its environment `env`
/// (assembled as for its runs).
pub fn render(
    path: &str,
    source: &[u8],
    host: &Host,
    env: &Assembled,
) -> Result<Vec<u8>, TemplateError> {
    let text = std::str::from_utf8(source).map_err(|_| TemplateError::NotText(path.into()))?;
    let mut jinja = engine();
    let failed = |e: minijinja::Error| TemplateError::Render {
        path: path.into(),
        line: e.line(),
        message: redact(&detail(&e), &env.secrets),
    };
    jinja.add_template(path, text).map_err(failed)?;
    let template = jinja.get_template(path).map_err(failed)?;
    let mut context: BTreeMap<&str, minijinja::Value> = env
        .vars
        .iter()
        .map(|(name, value)| (name.as_str(), minijinja::Value::from(value.as_str())))
        .collect();
    let view = HostView {
        name: &host.name,
        address: &host.address,
        port: host.port,
        groups: &host.groups,
    };
    context.insert("host", minijinja::Value::from_serialize(&view));
    if let Some(facts) = &host.status.facts {
        context.insert("facts", minijinja::Value::from_serialize::<&Facts>(facts));
    }
    let rendered = template.render(context).map_err(failed)?;
    if rendered.len() > MAX_RENDERED {
        return Err(TemplateError::TooLarge(path.into()));
    }
    Ok(rendered.into_bytes())
}

/// Checks `source`, the template of the file `path`, before it is kept: UTF-8 text of at most
/// [`MAX_RENDERED`] bytes, in a syntax the engine reads. What it names is checked when it is
/// rendered for a host.
pub fn check(path: &str, source: &[u8]) -> Result<(), TemplateError> {
    if source.len() > MAX_RENDERED {
        return Err(TemplateError::TooLarge(path.into()));
    }
    let text = std::str::from_utf8(source).map_err(|_| TemplateError::NotText(path.into()))?;
    engine()
        .add_template(path, text)
        .map_err(|e| TemplateError::Render {
            path: path.into(),
            line: e.line(),
            message: detail(&e),
        })
}

/// The template engine as every template uses it: a name not defined is an error, files are
/// written as they are (not escaped for HTML), a last newline is kept.
fn engine<'source>() -> Environment<'source> {
    let mut jinja = Environment::new();
    jinja.set_undefined_behavior(UndefinedBehavior::Strict);
    jinja.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    jinja.set_keep_trailing_newline(true);
    jinja
}

/// What is wrong, without the template's name and line (said apart).
fn detail(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HostStatus;

    fn router() -> Host {
        let mut host = Host::example("r1", "192.0.2.1", 12444, &["lab"]);
        host.status = HostStatus {
            facts: Some(Facts {
                arch: "mips".into(),
                model: "TP-Link Archer C7 v5".into(),
                ..Facts::default()
            }),
            ..HostStatus::default()
        };
        host
    }

    fn env(vars: &[(&str, &str)], secrets: &[&str]) -> Assembled {
        Assembled {
            vars: vars
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_template_sees_the_hosts_variables_name_and_facts() {
        let source = b"server {{ ntp_server }}\n# {{ host.name }} ({{ host.groups | join(',') }}) \
                       is a {{ facts.model }} on {{ facts.arch }}\nkey={{ API_TOKEN }}\n\
                       <&>\n";
        let vars = env(
            &[("ntp_server", "192.0.2.123"), ("API_TOKEN", "s3cret")],
            &["s3cret"],
        );
        let out = render("/etc/ntp.conf", source, &router(), &vars).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "server 192.0.2.123\n# r1 (lab) is a TP-Link Archer C7 v5 on mips\nkey=s3cret\n<&>\n"
        );
    }

    #[test]
    fn errors_name_the_line_and_never_a_secret() {
        let vars = env(&[("API_TOKEN", "s3cret")], &["s3cret"]);
        let missing = render("/etc/x", b"a\nb {{ nope }}\n", &router(), &vars).unwrap_err();
        assert!(
            matches!(&missing, TemplateError::Render { line: Some(2), .. }),
            "{missing:?}"
        );
        assert!(
            missing.to_string().starts_with("template /etc/x, line 2: "),
            "{missing}"
        );
        let syntax = render("/etc/x", b"{% if %}", &router(), &vars).unwrap_err();
        assert!(syntax.to_string().contains("line 1"), "{syntax}");
        // An error says what is wrong, not the values it met.
        let secret = render("/etc/x", b"{{ 1 + API_TOKEN }}", &router(), &vars).unwrap_err();
        assert!(!secret.to_string().contains("s3cret"), "{secret}");
        let binary = render("/etc/x", &[0xff, 0xfe], &router(), &vars).unwrap_err();
        assert_eq!(binary, TemplateError::NotText("/etc/x".into()));
        // Checked before it is kept: the syntax, not the names.
        assert!(check("/etc/x", b"{{ anything }}\n").is_ok());
        let checked = check("/etc/x", b"a\n{% if %}").unwrap_err();
        assert!(
            checked.to_string().starts_with("template /etc/x, line 2: "),
            "{checked}"
        );
        assert_eq!(
            check("/etc/x", &[0xff]),
            Err(TemplateError::NotText("/etc/x".into()))
        );
        // Facts are undefined before a heartbeat.
        let mut new = router();
        new.status.facts = None;
        assert!(render("/etc/x", b"{{ facts.arch }}", &new, &vars).is_err());
    }
}
