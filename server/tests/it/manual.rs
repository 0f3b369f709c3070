//! The manual cannot drift from the programs: every `otto-server …` and `otto-agent …` command in
//! a fenced code block of `README.md` and `docs/*.md` parses with the real command line (the
//! server's clap [`Cli`]; the agent's as [`agent_command`] describes it, which `completions::`
//! holds to `otto-agent --help`), and every relative link between those files resolves.
//!
//! A command is read as a shell would: a line ending in `\` goes on with the next, `#` starts a
//! comment, `|`, `||`, `&&`, `;` and `&` separate commands, redirections, `VAR=value` prefixes,
//! `sudo` and a `$ ` prompt are set aside, heredoc bodies skipped, and the commands inside
//! `$(…)` and after `ssh HOST` are read too. A synopsis's optional part, `[--host H]`, is checked
//! both left out and given.

use std::path::{Path, PathBuf};

use clap::Parser;
use otto_server::cli::{Cli, agent_command};

use crate::emulated::workspace;

/// The manual's files: the README and every page under docs/.
fn manual_files() -> Vec<PathBuf> {
    let root = workspace();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.insert(0, root.join("README.md"));
    files
}

/// `path` relative to the workspace, for messages.
fn shown(path: &Path) -> String {
    let root = workspace();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The lines of `text`'s fenced code blocks, each with its (1-based) line number; a line
/// continued with `\` is joined to the next, and a heredoc's body is left out.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut fenced = false;
    let mut heredoc: Option<String> = None;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            continue;
        }
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        let (number, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        joined.push_str(line.trim());
        if let Some(start) = joined.strip_suffix('\\') {
            pending = Some((number, format!("{} ", start.trim_end())));
            continue;
        }
        if let Some((_, after)) = joined.split_once("<<") {
            let end = after.trim_start_matches('-').split_whitespace().next();
            heredoc = end.map(|e| e.trim_matches(['\'', '"']).to_owned());
        }
        found.push((number, joined));
    }
    found
}

/// A piece of a shell line: a word (quotes undone) or an operator between commands.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Operator,
}

/// `line`'s tokens, up to a `#` comment; a `$(…)` stays whole in its word.
fn tokens(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => tokens.extend(word.take().map(Token::Word)),
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_default();
                w.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_default();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_default().extend(chars.next()),
            '$' if chars.peek() == Some(&'(') => {
                let w = word.get_or_insert_default();
                w.push('$');
                let mut depth = 0;
                for c in chars.by_ref() {
                    w.push(c);
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    if depth == 0 {
                        break;
                    }
                }
            }
            // `>&` and `<&` belong to a redirection, not a background `&`.
            '&' if previous == '>' || previous == '<' => word.get_or_insert_default().push(c),
            '|' | ';' | '&' => {
                tokens.extend(word.take().map(Token::Word));
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                tokens.push(Token::Operator);
            }
            c => word.get_or_insert_default().push(c),
        }
        previous = c;
    }
    tokens.extend(word.map(Token::Word));
    tokens
}

/// The texts inside each `$(…)` of `line` (not nested ones: those are found from their outer).
fn substitutions(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("$(") {
        let inner = &rest[start + 2..];
        let mut depth = 1;
        let end = inner.char_indices().find_map(|(i, c)| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            (depth == 0).then_some(i)
        });
        let Some(end) = end else { break };
        found.push(&inner[..end]);
        rest = &inner[end + 1..];
    }
    found
}

/// The program invocations of `line` (`otto-server …` or `otto-agent …`, the program's name
/// first), including those inside `$(…)` and after `ssh HOST`.
fn invocations(line: &str) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = substitutions(line)
        .into_iter()
        .flat_map(invocations)
        .collect();
    let tokens = tokens(line);
    for command in tokens.split(|t| *t == Token::Operator) {
        let mut words = Vec::new();
        let mut redirect_target = false;
        for token in command {
            let Token::Word(w) = token else { continue };
            if std::mem::take(&mut redirect_target) {
                continue;
            }
            let bare = w.trim_start_matches(|c: char| c.is_ascii_digit() || c == '&');
            if bare.starts_with(['<', '>']) {
                // `> file` names its file in the next word; `>file` and `2>&1` do not.
                redirect_target = bare.trim_start_matches(['<', '>', '-']).is_empty();
                continue;
            }
            let assignment = w.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if words.is_empty() && (assignment || w == "sudo" || w == "$" || w == "exec") {
                continue;
            }
            words.push(w.clone());
        }
        let Some(first) = words.first() else { continue };
        // The programs by name or from a build or bin directory (`/etc/init.d/otto-agent` is
        // the service's script, another program).
        let path = Path::new(first);
        let from_a_build = path.parent().is_some_and(|dir| {
            dir.as_os_str().is_empty()
                || dir.ends_with("bin")
                || dir.ends_with("release")
                || dir.ends_with("debug")
        });
        let program = path.file_name().and_then(|n| n.to_str());
        match program.filter(|_| from_a_build) {
            Some(name @ ("otto-server" | "otto-agent")) => {
                words[0] = name.to_owned();
                found.push(words);
            }
            Some("ssh") => {
                // The remote command follows the options and the destination.
                let mut rest = words[1..].iter();
                while let Some(w) = rest.next() {
                    if ["-p", "-i", "-o", "-l", "-F", "-J"].contains(&w.as_str()) {
                        rest.next();
                    } else if !w.starts_with('-') {
                        break;
                    }
                }
                let remote: Vec<&str> = rest.map(String::as_str).collect();
                found.extend(invocations(&remote.join(" ")));
            }
            _ => {}
        }
    }
    found
}

/// `words` with each optional part of a synopsis (`[--host H]`) left out and given: every
/// combination.
fn expand_optional(words: &[String]) -> Vec<Vec<String>> {
    // A group opens with a word like `[--host` or `[-x]` (not an address such as `[::1]:22`).
    let open = words.iter().position(|w| {
        w.strip_prefix('[')
            .and_then(|r| r.chars().next())
            .is_some_and(|c| !c.is_ascii_digit() && c != ':')
    });
    let Some(open) = open else {
        return vec![words.to_vec()];
    };
    let Some(close) = words[open..].iter().position(|w| w.ends_with(']')) else {
        return vec![words.to_vec()];
    };
    let close = open + close;
    let mut given = words.to_vec();
    given[open] = given[open][1..].to_owned();
    let last = &given[close];
    given[close] = last[..last.len() - 1].to_owned();
    given.retain(|w| !w.is_empty());
    let mut without = words[..open].to_vec();
    without.extend_from_slice(&words[close + 1..]);
    let mut all = expand_optional(&without);
    all.extend(expand_optional(&given));
    all
}

/// Whether `args` (the program's name first) parse with that program's command line; the error
/// when not. Asking for help or the version counts as parsing.
fn parses(args: &[String]) -> Result<(), String> {
    let result = if args[0] == "otto-server" {
        Cli::try_parse_from(args).map(drop)
    } else {
        agent_command().try_get_matches_from(args).map(drop)
    };
    match result {
        Err(e)
            if !matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            Err(e.render().to_string())
        }
        _ => Ok(()),
    }
}

#[test]
fn every_command_in_the_manual_parses() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in manual_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in code_lines(&text) {
            for invocation in invocations(&line) {
                for args in expand_optional(&invocation) {
                    checked += 1;
                    if let Err(e) = parses(&args) {
                        let first = e.lines().next().unwrap_or_default().to_owned();
                        wrong.push(format!(
                            "{}:{number}: `{}`: {first}",
                            shown(&file),
                            args.join(" ")
                        ));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The manual shows dozens of commands; far fewer means they were not found.
    assert!(checked > 40, "only {checked} commands found");
}

#[test]
fn the_reading_of_shell_lines_finds_each_command_and_its_words() {
    let line = "FOO=1 sudo otto-server env set A --secret < token.txt 2>&1 | tee x && \
                ssh root@r \"otto-agent trust 'ssh-ed25519 AAAA'\"; \
                /etc/init.d/otto-agent start; target/release/otto-server ping # a comment | x";
    assert_eq!(
        invocations(line),
        [
            vec!["otto-server", "env", "set", "A", "--secret"],
            vec!["otto-agent", "trust", "ssh-ed25519 AAAA"],
            vec!["otto-server", "ping"],
        ]
    );
    let nested = r#"otto-server host trust r1 "$(ssh root@10.0.0.1 otto-agent pubkey)""#;
    assert_eq!(
        invocations(nested),
        [
            vec!["otto-agent", "pubkey"],
            vec![
                "otto-server",
                "host",
                "trust",
                "r1",
                "$(ssh root@10.0.0.1 otto-agent pubkey)"
            ],
        ]
    );
    let synopsis: Vec<String> = ["otto-server", "history", "[--host", "H]", "[--run", "ID]"]
        .map(String::from)
        .to_vec();
    assert_eq!(expand_optional(&synopsis).len(), 4);
    let lines = code_lines("text\n```sh\na \\\n  b\ncat <<'EOF'\nbody\nEOF\nc\n```\nd\n");
    assert_eq!(
        lines,
        [
            (3, "a b".into()),
            (5, "cat <<'EOF'".into()),
            (8, "c".into())
        ]
    );
    // And a command that does not parse is found out.
    assert!(parses(&["otto-server".into(), "no-such-command".into()]).is_err());
    assert!(parses(&["otto-agent".into(), "trust".into()]).is_err());
}

/// The relative links of a Markdown text outside its code: `[text](target)`'s targets.
fn relative_links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        // Inline code is no link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for (at, _) in prose.match_indices("](") {
            let target = prose[at + 2..].split([')', ' ']).next().unwrap_or_default();
            if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
                found.push((i + 1, target.to_owned()));
            }
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_relative_link_of_the_manual_resolves() {
    let mut wrong = Vec::new();
    for file in manual_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, link) in relative_links(&text) {
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                wrong.push(format!("{}:{number}: no {link}", shown(&file)));
                continue;
            }
            if fragment.is_empty() || target.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let headings = std::fs::read_to_string(&target).unwrap();
            let found = code_free_headings(&headings)
                .iter()
                .any(|h| anchor(h) == fragment);
            if !found {
                wrong.push(format!("{}:{number}: no heading for {link}", shown(&file)));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The headings of a Markdown text (`#`… lines outside code blocks), without their `#`s.
fn code_free_headings(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.push(line.trim_start_matches('#'));
        }
    }
    found
}
