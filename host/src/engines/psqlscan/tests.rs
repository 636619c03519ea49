//! The scan against real pg_dump output (PostgreSQL 15.18, `--format=plain`
//! of a database made to hold what lexers trip on: quoted names with `;`
//! and `"`, strings with `''`, backslashes and newlines, dollar-quoted and
//! BEGIN ATOMIC bodies, array slices `a[x:y]`, non-ASCII text, COPY data
//! with `\\.` and `\\!` in values) and against the ways a changed file
//! could make psql run a meta-command.

use std::io::Write;

use proptest::prelude::*;

use super::{scan, Refused};
use crate::engines::framing::NoPsqlMetaCommands;

const PLAIN: &str = include_str!("pg15-plain.sql");
const INSERTS: &str = include_str!("pg15-inserts.sql");
const COLUMN_INSERTS: &str = include_str!("pg15-colinserts.sql");
const CLEAN: &str = include_str!("pg15-clean.sql");
const CREATE: &str = include_str!("pg15-create.sql");

const GENUINE: [&str; 4] = [PLAIN, INSERTS, COLUMN_INSERTS, CLEAN];

/// What the guard passes to psql, `chunk` bytes at a time.
fn guarded(bytes: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
    let mut g = NoPsqlMetaCommands::new(Vec::new());
    for c in bytes.chunks(chunk) {
        g.write_all(c).map_err(|e| e.to_string())?;
    }
    g.finish().map_err(|e| e.to_string())?;
    Ok(g.inner)
}

/// A dump without pg_dump's `\restrict`/`\unrestrict` lines.
fn unrestricted(dump: &str) -> String {
    dump.split_inclusive('\n')
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .collect()
}

#[test]
fn real_pg_dump_output_passes_whole_less_its_restrict_lines() {
    for dump in GENUINE {
        assert_eq!(scan(dump.as_bytes()), Ok(()));
        for chunk in [1, 2, 3, 7, 64, 4096, dump.len()] {
            assert_eq!(
                String::from_utf8(guarded(dump.as_bytes(), chunk).unwrap()).unwrap(),
                unrestricted(dump),
                "{chunk}"
            );
        }
    }
}

#[test]
fn a_create_dump_is_refused_as_such() {
    match scan(CREATE.as_bytes()) {
        Err(Refused::Create(m)) => assert!(m.contains("--create") && m.contains("\\connect")),
        other => panic!("{other:?}"),
    }
}

/// The reviewer's four bypasses of the line-based filter (review 13, #1),
/// and the ones it held, each put after `SET row_security = off;`.
#[test]
fn meta_commands_anywhere_psql_runs_them_are_refused() {
    let key = "73HLpwItOHVskqEztFLehny1nd4ujPJsv0v518dRv9FeW8ELMNzcn79hr7AJZHI";
    let bad = [
        "SELECT 1; \\! touch /tmp/pwned_v02\n".to_string(),
        "-- harmless\r\\! touch /tmp/pwned_v07\n".into(),
        "/*\nCOPY public.x (a) FROM stdin;\n*/\n\\! touch /tmp/pwned_v13\n\\.\n".into(),
        format!("\\unrestrict {key} \\! touch /tmp/pwned_v21\n"),
        format!("\\restrict {key}\\! touch x\n"),
        "\\! touch x\n".into(),
        "\\copy t to program 'id'\n".into(),
        "\\o |id\n".into(),
        "\\set x `id`\n".into(),
        "\\connect other\n".into(),
        "SELECT 1 \\g |id\n".into(),
        "SELECT 1;\\\\! id\n".into(),
        "/* a /* nested */ still comment */ \\! id\n".into(),
        "SELECT E'\\'' ; \\! id\n".into(),
        "SELECT 'a\\'; \\! id --';\n".into(),
        "SELECT $a$ x $a$ \\! id\n".into(),
        "SELECT x$a$ \\! id\n$a$;\n".into(),
        "SELECT 1$a$ x $a$;\n".into(),
        "SELECT $1$a$ x $a$;\n".into(),
        "SELECT \"a\\\" \\! id\n".into(),
        "COPY public.t (a) FROM stdin; \\! id\n1\n\\.\n".into(),
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned_v17';\n".into(),
        "ROLLBACK TO SAVEPOINT s;\n".into(),
        "SAVEPOINT s;\n".into(),
        "copy public.t (a) from program 'id';\n".into(),
        "COPY public.t (a) FROM '/etc/passwd';\n".into(),
        "SELECT :'DBNAME';\n".into(),
        "SELECT :USER;\n".into(),
        "SET client_encoding = 'SJIS';\n".into(),
        "SET NAMES 'BIG5';\n".into(),
        "SELECT 1; -- \u{e9}\r\\! id\n".into(),
        "SELECT caf\u{e9}|$a$;\n".into(),
        "SELECT 'a\0'; \\! id\n".into(),
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1;\nCOPY public.t (a) FROM stdin;\n\\! id\n\\.\nEND;\n".into(),
    ];
    let at = PLAIN.find("SET row_security = off;\n").unwrap() + "SET row_security = off;\n".len();
    for snippet in &bad {
        let dump = format!("{}{snippet}{}", &PLAIN[..at], &PLAIN[at..]);
        for chunk in [1, 5, 4096] {
            let out = guarded(dump.as_bytes(), chunk);
            assert!(out.is_err(), "{snippet:?} passed ({chunk})");
        }
        assert!(scan(dump.as_bytes()).is_err(), "{snippet:?}");
        // Nothing of it reached psql.
        let mut g = NoPsqlMetaCommands::new(Vec::new());
        let _ = g.write_all(dump.as_bytes());
        assert!(
            !String::from_utf8_lossy(&g.inner).contains("\\!"),
            "{snippet:?}"
        );
    }
}

/// What looks like a meta-command but is quoted, commented or COPY data
/// reaches psql unchanged.
#[test]
fn backslashes_psql_does_not_run_pass() {
    for good in [
        "SELECT 'a\\! b';\n",
        "SELECT $$ \\! x $$;\n",
        "SELECT $a$ $b$ \\! x $b$ $a$;\n",
        "-- \\! x\n",
        "/* \\! x /* \\! y */ */\n",
        "SELECT \"a\\! b\";\n",
        "SELECT a::text, b := 1, arr[1:n];\n",
        "COPY public.t (a) FROM stdin;\n\\! x\n\\N\n\\.x\n\\.\n",
        "COPY public.\"Odd \"\"n\"\"; x\" (id, \"Caf\u{e9}\") FROM stdin;\n1\n\\.\r\n",
        "SET client_encoding = 'LATIN1';\n",
    ] {
        let r = scan(good.as_bytes());
        assert_eq!(r, Ok(()), "{good:?}");
        assert_eq!(guarded(good.as_bytes(), 3).unwrap(), good.as_bytes());
    }
}

/// Snippets that make psql run `\!` (or read on otherwise than the scan)
/// wherever they stand between two statements.
fn bang() -> impl Strategy<Value = String> {
    let cmd = prop_oneof![
        Just("\\!".to_string()),
        Just("\\! ".to_string()),
        Just("\\!touch /tmp/x".to_string()),
        Just("\\o |sh".to_string()),
        Just("\\w |sh".to_string()),
        Just("\\setenv X y".to_string()),
        Just("\\g |sh".to_string()),
        Just("\\gexec".to_string()),
        Just("\\copy t from program 'sh'".to_string()),
        Just("\\i /etc/x".to_string()),
    ];
    let wrap = prop_oneof![
        Just("{}\n".to_string()),
        Just("SELECT 1; {}\n".to_string()),
        Just("SELECT 1 {}\n".to_string()),
        Just("-- c\r{}\n".to_string()),
        Just("/* a */ {}\n".to_string()),
        Just("/* /* */ */{}\n".to_string()),
        Just("/*\nCOPY public.x (a) FROM stdin;\n*/\n{}\n\\.\n".to_string()),
        Just("\\unrestrict abc {}\n".to_string()),
        Just("\\restrict abc{}\n".to_string()),
        Just("SELECT 'x' {}\n".to_string()),
        Just("SELECT $$x$$ {}\n".to_string()),
        Just("SELECT \"x\"{}\n".to_string()),
        Just("COPY public.t (a) FROM stdin; {}\n\\.\n".to_string()),
        Just("SELECT E'\\'' ; {}\n".to_string()),
    ];
    (cmd, wrap).prop_map(|(c, w)| w.replace("{}", &c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Inserted at any line between statements of a real dump, a
    /// meta-command never passes, whatever the chunking.
    #[test]
    fn inserted_meta_commands_never_pass(
        which in 0..GENUINE.len(),
        pick in any::<prop::sample::Index>(),
        snippet in bang(),
        chunk in 1usize..300,
    ) {
        let dump = GENUINE[which];
        // Line starts where psql is between statements: pg_dump's comment
        // and SET/CREATE/ALTER lines.
        let starts: Vec<usize> = dump
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .filter(|&i| {
                let rest = &dump[i..];
                rest.starts_with("--") || rest.starts_with("SET ") || rest.starts_with("CREATE ") || rest.starts_with("ALTER ")
            })
            .collect();
        let at = starts[pick.index(starts.len())];
        let bad = format!("{}{snippet}{}", &dump[..at], &dump[at..]);
        prop_assert!(scan(bad.as_bytes()).is_err(), "{:?}", snippet);
        prop_assert!(guarded(bad.as_bytes(), chunk).is_err());
    }

    /// Real dumps pass under any chunking.
    #[test]
    fn real_dumps_pass_in_any_chunks(which in 0..GENUINE.len(), chunk in 1usize..5000) {
        let dump = GENUINE[which];
        prop_assert_eq!(guarded(dump.as_bytes(), chunk).unwrap(), unrestricted(dump).into_bytes());
    }
}

/// Review 13b, #1: server-side code switching client_encoding (set_config,
/// a DO block) is refused wherever the name appears; so is any change of
/// standard_conforming_strings after pg_dump's header line.
#[test]
fn setting_names_outside_pg_dumps_header_are_refused() {
    let bad = [
        "SELECT set_config('client_encoding','SJIS',false);\nSELECT '\u{100}' -- ' \\! touch /tmp/pwned_g20\n",
        "DO $$BEGIN PERFORM set_config('client_encoding','SJIS',false); END$$;\n",
        "SELECT pg_catalog.set_config('CLIENT_ENCODING', 'SJIS', false);\n",
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $_$ BEGIN SET Client_Encoding TO 'SJIS'; END $_$;\n",
        "-- client_encoding\n",
        "SET standard_conforming_strings = off;\nSELECT 'a\\'; \\! id --';\n",
        "SET standard_conforming_strings = on;\n",
        "SELECT set_config('standard_conforming_strings', 'off', false);\n",
        "RESET ALL;\n",
        "DISCARD ALL;\n",
    ];
    let at = PLAIN.find("SET row_security = off;\n").unwrap() + "SET row_security = off;\n".len();
    for snippet in bad {
        let dump = format!("{}{snippet}{}", &PLAIN[..at], &PLAIN[at..]);
        match scan(dump.as_bytes()) {
            Err(Refused::Unsupported(_)) => {}
            other => panic!("{snippet:?}: {other:?}"),
        }
        assert!(guarded(dump.as_bytes(), 7).is_err(), "{snippet:?}");
    }
}

/// Review 13b, #2: pg_dump's header sets standard_conforming_strings on,
/// so `'O\''Brien'` and `'\'` are whole standard strings, in the schema,
/// in comments and in --inserts data.
#[test]
fn backslash_quote_in_standard_strings_of_a_genuine_dump_passes() {
    let good = "CREATE TABLE public.people (\n    id integer NOT NULL,\n    name text DEFAULT 'O\\''Brien'::text\n);\n\
        CREATE VIEW public.v AS\n SELECT people.id,\n    (people.name || '\\'::text) AS n\n   FROM public.people;\n\
        COMMENT ON TABLE public.people IS 'from PHP addslashes: O\\''Brien';\n\
        INSERT INTO public.people (id, name) VALUES (1, 'C:\\');\n\
        INSERT INTO public.people VALUES (2, '\\'' \\! not a command');\n";
    let at = PLAIN.find("SET row_security = off;\n").unwrap() + "SET row_security = off;\n".len();
    let dump = format!("{}{good}{}", &PLAIN[..at], &PLAIN[at..]);
    assert_eq!(scan(dump.as_bytes()), Ok(()));
    for chunk in [1, 3, 4096] {
        assert_eq!(
            String::from_utf8(guarded(dump.as_bytes(), chunk).unwrap()).unwrap(),
            unrestricted(&dump)
        );
    }
    // Without pg_dump's header line, or in an E'' string, `\'` is still
    // read two ways and refused; so is a meta-command after a standard
    // string that ends in a backslash.
    assert!(scan(good.as_bytes()).is_err());
    for bad in [
        "SELECT E'\\'' ; \\! id\n",
        "SELECT e'a''\\'; \\! id --';\n",
        "SELECT 'a\\'; \\! id --';\n",
    ] {
        let dump = format!("{}{bad}{}", &PLAIN[..at], &PLAIN[at..]);
        assert!(scan(dump.as_bytes()).is_err(), "{bad:?}");
    }
}

/// Review 13b, #7: a psql-variable-looking token in a genuine dump is
/// unsupported, not called altered.
#[test]
fn psql_variable_tokens_are_unsupported_not_altered() {
    for snippet in [
        "ALTER TABLE public.u ADD CONSTRAINT c CHECK ((a[1:\"ENCODING\"] IS NOT NULL));\n",
        "SELECT a[1:HI] FROM t;\n",
    ] {
        match scan(snippet.as_bytes()) {
            Err(Refused::Unsupported(m)) => {
                assert!(m.contains("cannot tell it from a psql variable"), "{m}");
                assert!(!m.contains("never writes"), "{m}");
            }
            other => panic!("{snippet:?}: {other:?}"),
        }
    }
}
