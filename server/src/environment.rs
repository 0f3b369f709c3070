//! The environment a script runs with, assembled with the original Otto's precedence (later
//! wins): built-ins, global, script, each of the host's groups (by name), the host. Also the
//! redaction of secret values from anything shown to a person.

use crate::model::{EnvVar, Host, Scope};

/// The assembled environment, in a stable order, and the values that must never be shown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assembled {
    /// NAME, value pairs, each name once.
    pub vars: Vec<(String, String)>,
    /// The secret values among them.
    pub secrets: Vec<String>,
}

/// Assembles the environment for a run of `script` (None for an ad-hoc command) on `host`,
/// from every stored variable `all`.
pub fn assemble(all: &[EnvVar], script: Option<&str>, host: &Host) -> Assembled {
    let mut out = Assembled::default();
    let mut set = |name: &str, value: &str, secret: bool| {
        match out.vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => out.vars.push((name.to_string(), value.to_string())),
        }
        if secret && !value.is_empty() && !out.secrets.iter().any(|s| s == value) {
            out.secrets.push(value.to_string());
        }
    };
    set("OTTO_SERVER_VERSION", env!("CARGO_PKG_VERSION"), false);
    set("OTTO_HOST_NAME", &host.name, false);
    set("OTTO_HOST_ADDRESS", &host.address, false);
    set("OTTO_HOST_PORT", &host.port.to_string(), false);
    for layer in layers(script, host) {
        for var in all.iter().filter(|v| v.scope == layer) {
            set(&var.name, &var.value.value, var.value.secret);
        }
    }
    out
}

/// The scopes whose variables a run of `script` (None for an ad-hoc command) on `host` gets,
/// the later winning: global, the script's, each of the host's groups, the host's.
pub fn layers<'a>(script: Option<&str>, host: &'a Host) -> impl Iterator<Item = Scope> + 'a {
    std::iter::once(Scope::Global)
        .chain(script.map(|s| Scope::Script(s.to_string())))
        .chain(host.groups.iter().map(|g| Scope::Group(g.clone())))
        .chain(std::iter::once(Scope::Host(host.name.clone())))
}

/// `text` with every secret value replaced by `********`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "********"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Secretish;

    fn var(scope: Scope, name: &str, value: &str, secret: bool) -> EnvVar {
        EnvVar {
            scope,
            name: name.into(),
            value: Secretish {
                value: value.into(),
                secret,
            },
        }
    }

    fn host() -> Host {
        Host::example("r1", "10.0.0.1", 12444, &["a", "b"])
    }

    fn get<'a>(a: &'a Assembled, name: &str) -> Option<&'a str> {
        a.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn later_layers_win() {
        let all = [
            var(Scope::Host("r1".into()), "X", "host", false),
            var(Scope::Group("b".into()), "X", "group b", false),
            var(Scope::Group("a".into()), "X", "group a", false),
            var(Scope::Script("s".into()), "X", "script", false),
            var(Scope::Global, "X", "global", false),
            var(Scope::Global, "OTTO_HOST_PORT", "overridden", false),
            var(Scope::Script("s".into()), "Y", "script", false),
            var(Scope::Group("a".into()), "Y", "group a", false),
            var(Scope::Group("b".into()), "Z", "group b", false),
            var(Scope::Script("other".into()), "Z", "other script", false),
            var(Scope::Host("r2".into()), "Z", "other host", false),
            var(Scope::Group("c".into()), "Z", "other group", false),
        ];
        let env = assemble(&all, Some("s"), &host());
        assert_eq!(get(&env, "X"), Some("host"));
        assert_eq!(get(&env, "Y"), Some("group a"));
        assert_eq!(get(&env, "Z"), Some("group b"));
        assert_eq!(get(&env, "OTTO_HOST_PORT"), Some("overridden"));
        assert_eq!(get(&env, "OTTO_HOST_ADDRESS"), Some("10.0.0.1"));
        let ad_hoc = assemble(&all, None, &host());
        assert_eq!(get(&ad_hoc, "Y"), Some("group a"));
    }

    #[test]
    fn secrets_are_collected_and_redacted() {
        let all = [
            var(Scope::Global, "TOKEN", "s3cr3t-value", true),
            var(Scope::Global, "EMPTY", "", true),
        ];
        let env = assemble(&all, None, &host());
        assert_eq!(env.secrets, ["s3cr3t-value"]);
        assert_eq!(
            redact("token=s3cr3t-value; again s3cr3t-value", &env.secrets),
            "token=********; again ********"
        );
    }
}
