//! `URL` and `URLSearchParams` on every engine: Deno's are native, QuickJS has the prelude's
//! (written from the WHATWG URL Standard). Each test body is written once and run on both engines
//! against one fixed table of answers, taken from Deno's native `URL` (the oracle), so the two
//! engines give identical answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lit_actions::{Action, EngineConfig};
use serde_json::{json, Value};
use support::{limits, MakeEngine, RecordingHost};

/// Runs `code` with `params` and returns its response parsed as JSON.
async fn respond(make: MakeEngine, code: &str, params: &[(&str, Value)]) -> Value {
    let engine = make(EngineConfig::new(limits()));
    let mut action = Action::new(code);
    for (k, v) in params {
        action = action.with_param(*k, v.clone());
    }
    let out = engine
        .run(&action, RecordingHost::new())
        .await
        .unwrap_or_else(|e| panic!("action failed: {e}"));
    serde_json::from_str(out.response.as_deref().expect("no response")).unwrap()
}

/// The URL components the tables list, in this order.
const COMPONENTS: &str = r#"["href", "origin", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"]"#;

/// A URL's components, in the order of [`COMPONENTS`].
type Components = [&'static str; 11];

/// `new URL(input, base)`: its components, or `None` where it throws a `TypeError`.
#[rustfmt::skip]
const PARSE_CASES: &[(&str, Option<&str>, Option<Components>)] = &[
    ("http://example.com", None, Some(["http://example.com/", "http://example.com", "http:", "", "", "example.com", "example.com", "", "/", "", ""])),
    ("HTTP://EXAMPLE.COM:80/a/b?c#d", None, Some(["http://example.com/a/b?c#d", "http://example.com", "http:", "", "", "example.com", "example.com", "", "/a/b", "?c", "#d"])),
    ("https://user:pa ss@Host.com:8443/p?q=1 2#f g", None, Some(["https://user:pa%20ss@host.com:8443/p?q=1%202#f%20g", "https://host.com:8443", "https:", "user", "pa%20ss", "host.com:8443", "host.com", "8443", "/p", "?q=1%202", "#f%20g"])),
    ("https://a.com:443/", None, Some(["https://a.com/", "https://a.com", "https:", "", "", "a.com", "a.com", "", "/", "", ""])),
    ("ws://a:80/", None, Some(["ws://a/", "ws://a", "ws:", "", "", "a", "a", "", "/", "", ""])),
    ("wss://a:443/x", None, Some(["wss://a/x", "wss://a", "wss:", "", "", "a", "a", "", "/x", "", ""])),
    ("ftp://a:21/", None, Some(["ftp://a/", "ftp://a", "ftp:", "", "", "a", "a", "", "/", "", ""])),
    ("ftp://a:22/", None, Some(["ftp://a:22/", "ftp://a:22", "ftp:", "", "", "a:22", "a", "22", "/", "", ""])),
    ("http://a/b/c/./../../g", None, Some(["http://a/g", "http://a", "http:", "", "", "a", "a", "", "/g", "", ""])),
    ("http://a/b/c/%2e%2E/d", None, Some(["http://a/b/d", "http://a", "http:", "", "", "a", "a", "", "/b/d", "", ""])),
    ("http:\\\\a\\b\\c", None, Some(["http://a/b/c", "http://a", "http:", "", "", "a", "a", "", "/b/c", "", ""])),
    ("http://a/%7e?%7e#%7e", None, Some(["http://a/%7e?%7e#%7e", "http://a", "http:", "", "", "a", "a", "", "/%7e", "?%7e", "#%7e"])),
    ("http://a/ä?ä#ä", None, Some(["http://a/%C3%A4?%C3%A4#%C3%A4", "http://a", "http:", "", "", "a", "a", "", "/%C3%A4", "?%C3%A4", "#%C3%A4"])),
    ("http://a/\"<>`{}|^", None, Some(["http://a/%22%3C%3E%60%7B%7D|^", "http://a", "http:", "", "", "a", "a", "", "/%22%3C%3E%60%7B%7D|^", "", ""])),
    ("http://a/?\"'<>`", None, Some(["http://a/?%22%27%3C%3E`", "http://a", "http:", "", "", "a", "a", "", "/", "?%22%27%3C%3E`", ""])),
    ("foo://a/?'", None, Some(["foo://a/?'", "null", "foo:", "", "", "a", "a", "", "/", "?'", ""])),
    ("http://a/#\"<>` x", None, Some(["http://a/#%22%3C%3E%60%20x", "http://a", "http:", "", "", "a", "a", "", "/", "", "#%22%3C%3E%60%20x"])),
    ("g", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/g", "http://a", "http:", "", "", "a", "a", "", "/b/c/g", "", ""])),
    ("./g", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/g", "http://a", "http:", "", "", "a", "a", "", "/b/c/g", "", ""])),
    ("g/", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/g/", "http://a", "http:", "", "", "a", "a", "", "/b/c/g/", "", ""])),
    ("/g", Some("http://a/b/c/d;p?q"), Some(["http://a/g", "http://a", "http:", "", "", "a", "a", "", "/g", "", ""])),
    ("//g", Some("http://a/b/c/d;p?q"), Some(["http://g/", "http://g", "http:", "", "", "g", "g", "", "/", "", ""])),
    ("?y", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/d;p?y", "http://a", "http:", "", "", "a", "a", "", "/b/c/d;p", "?y", ""])),
    ("g?y", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/g?y", "http://a", "http:", "", "", "a", "a", "", "/b/c/g", "?y", ""])),
    ("#s", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/d;p?q#s", "http://a", "http:", "", "", "a", "a", "", "/b/c/d;p", "?q", "#s"])),
    ("g#s", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/g#s", "http://a", "http:", "", "", "a", "a", "", "/b/c/g", "", "#s"])),
    ("", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/d;p?q", "http://a", "http:", "", "", "a", "a", "", "/b/c/d;p", "?q", ""])),
    (".", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/", "http://a", "http:", "", "", "a", "a", "", "/b/c/", "", ""])),
    ("..", Some("http://a/b/c/d;p?q"), Some(["http://a/b/", "http://a", "http:", "", "", "a", "a", "", "/b/", "", ""])),
    ("../../../g", Some("http://a/b/c/d;p?q"), Some(["http://a/g", "http://a", "http:", "", "", "a", "a", "", "/g", "", ""])),
    ("../..", Some("http://a/b/c/d;p?q"), Some(["http://a/", "http://a", "http:", "", "", "a", "a", "", "/", "", ""])),
    ("g;x=1/../y", Some("http://a/b/c/d;p?q"), Some(["http://a/b/c/y", "http://a", "http:", "", "", "a", "a", "", "/b/c/y", "", ""])),
    ("https:g", Some("http://a/b"), Some(["https://g/", "https://g", "https:", "", "", "g", "g", "", "/", "", ""])),
    ("http:g", Some("http://a/b/c"), Some(["http://a/b/g", "http://a", "http:", "", "", "a", "a", "", "/b/g", "", ""])),
    ("\\\\x\\y", Some("http://a/b"), Some(["http://x/y", "http://x", "http:", "", "", "x", "x", "", "/y", "", ""])),
    ("http://192.168.0.1/", None, Some(["http://192.168.0.1/", "http://192.168.0.1", "http:", "", "", "192.168.0.1", "192.168.0.1", "", "/", "", ""])),
    ("http://0x7f.1/", None, Some(["http://127.0.0.1/", "http://127.0.0.1", "http:", "", "", "127.0.0.1", "127.0.0.1", "", "/", "", ""])),
    ("http://0300.0250.0.1", None, Some(["http://192.168.0.1/", "http://192.168.0.1", "http:", "", "", "192.168.0.1", "192.168.0.1", "", "/", "", ""])),
    ("http://4294967295", None, Some(["http://255.255.255.255/", "http://255.255.255.255", "http:", "", "", "255.255.255.255", "255.255.255.255", "", "/", "", ""])),
    ("http://4294967296", None, None),
    ("http://1.2.3.4.5", None, None),
    ("http://1.2.3.09", None, None),
    ("http://a.1", None, None),
    ("http://[::1]:8080/", None, Some(["http://[::1]:8080/", "http://[::1]:8080", "http:", "", "", "[::1]:8080", "[::1]", "8080", "/", "", ""])),
    ("http://[2001:DB8:0:0:0:0:0:1]/", None, Some(["http://[2001:db8::1]/", "http://[2001:db8::1]", "http:", "", "", "[2001:db8::1]", "[2001:db8::1]", "", "/", "", ""])),
    ("http://[::ffff:192.168.0.1]/", None, Some(["http://[::ffff:c0a8:1]/", "http://[::ffff:c0a8:1]", "http:", "", "", "[::ffff:c0a8:1]", "[::ffff:c0a8:1]", "", "/", "", ""])),
    ("http://[1:0:0:2:0:0:0:3]/", None, Some(["http://[1:0:0:2::3]/", "http://[1:0:0:2::3]", "http:", "", "", "[1:0:0:2::3]", "[1:0:0:2::3]", "", "/", "", ""])),
    ("http://[1::2::3]/", None, None),
    ("http://[::1/", None, None),
    ("http://[g::]/", None, None),
    ("data:text/plain,Hello%20World#frag", None, Some(["data:text/plain,Hello%20World#frag", "null", "data:", "", "", "", "", "", "text/plain,Hello%20World", "", "#frag"])),
    ("data:,A b", None, Some(["data:,A b", "null", "data:", "", "", "", "", "", ",A b", "", ""])),
    ("mailto:Joe@Example.com?subject=hi there", None, Some(["mailto:Joe@Example.com?subject=hi%20there", "null", "mailto:", "", "", "", "", "", "Joe@Example.com", "?subject=hi%20there", ""])),
    ("javascript:alert(1)", None, Some(["javascript:alert(1)", "null", "javascript:", "", "", "", "", "", "alert(1)", "", ""])),
    ("urn:isbn:0451450523", None, Some(["urn:isbn:0451450523", "null", "urn:", "", "", "", "", "", "isbn:0451450523", "", ""])),
    ("foo://User@Host:99/p/../q", None, Some(["foo://User@Host:99/q", "null", "foo:", "User", "", "Host:99", "Host", "99", "/q", "", ""])),
    ("foo:/a/../b", None, Some(["foo:/b", "null", "foo:", "", "", "", "", "", "/b", "", ""])),
    ("foo://", None, Some(["foo://", "null", "foo:", "", "", "", "", "", "", "", ""])),
    ("web+x:path", None, Some(["web+x:path", "null", "web+x:", "", "", "", "", "", "path", "", ""])),
    ("file:///C:/x/../y", None, Some(["file:///C:/y", "null", "file:", "", "", "", "", "", "/C:/y", "", ""])),
    ("file://localhost/etc/hosts", None, Some(["file:///etc/hosts", "null", "file:", "", "", "", "", "", "/etc/hosts", "", ""])),
    ("file:///a/b", None, Some(["file:///a/b", "null", "file:", "", "", "", "", "", "/a/b", "", ""])),
    ("file:c:\\x", None, Some(["file:///c:/x", "null", "file:", "", "", "", "", "", "/c:/x", "", ""])),
    ("x", Some("file:///a/b"), Some(["file:///a/x", "null", "file:", "", "", "", "", "", "/a/x", "", ""])),
    ("not a url", None, None),
    ("http://", None, None),
    ("http://a:b@/", None, None),
    ("http://a:99999/", None, None),
    ("http://a:-1/", None, None),
    ("http://a b/", None, None),
    ("http://a<b/", None, None),
    ("//x", None, None),
    ("", None, None),
    ("http://a%2fb/", None, None),
    ("http://ex%41mple.com/", None, Some(["http://example.com/", "http://example.com", "http:", "", "", "example.com", "example.com", "", "/", "", ""])),
    ("http://EXAMPLE.com./", None, Some(["http://example.com./", "http://example.com.", "http:", "", "", "example.com.", "example.com.", "", "/", "", ""])),
    ("https://@a/", None, Some(["https://a/", "https://a", "https:", "", "", "a", "a", "", "/", "", ""])),
    ("https://:@a/", None, Some(["https://a/", "https://a", "https:", "", "", "a", "a", "", "/", "", ""])),
    ("http://a:@b@c/", None, Some(["http://a:%40b@c/", "http://c", "http:", "a", "%40b", "c", "c", "", "/", "", ""])),
    ("http://a@b@c/", None, Some(["http://a%40b@c/", "http://c", "http:", "a%40b", "", "c", "c", "", "/", "", ""])),
    ("  http://a/ \n", None, Some(["http://a/", "http://a", "http:", "", "", "a", "a", "", "/", "", ""])),
    ("ht\ttp://a/\nb", None, Some(["http://a/b", "http://a", "http:", "", "", "a", "a", "", "/b", "", ""])),
    ("http://a:0080/", None, Some(["http://a/", "http://a", "http:", "", "", "a", "a", "", "/", "", ""])),
    ("http://a:/", None, Some(["http://a/", "http://a", "http:", "", "", "a", "a", "", "/", "", ""])),
    ("http://[0:0:0:0:0:0:13.1.68.3]/", None, Some(["http://[::d01:4403]/", "http://[::d01:4403]", "http:", "", "", "[::d01:4403]", "[::d01:4403]", "", "/", "", ""])),
    ("blob:https://a.com/x", None, Some(["blob:https://a.com/x", "https://a.com", "blob:", "", "", "", "", "", "https://a.com/x", "", ""])),
    ("blob:foo", None, Some(["blob:foo", "null", "blob:", "", "", "", "", "", "foo", "", ""])),
    ("http://a/?a=1&b=%20+x&c", None, Some(["http://a/?a=1&b=%20+x&c", "http://a", "http:", "", "", "a", "a", "", "/", "?a=1&b=%20+x&c", ""])),
    ("#x", Some("data:text/plain,abc"), Some(["data:text/plain,abc#x", "null", "data:", "", "", "", "", "", "text/plain,abc", "", "#x"])),
    ("y", Some("data:text/plain,abc"), None),
    ("http://a/😀", None, Some(["http://a/%F0%9F%98%80", "http://a", "http:", "", "", "a", "a", "", "/%F0%9F%98%80", "", ""])),
    ("http://a", Some("bad base"), None),
    ("a", Some("mailto:x"), None),
];

/// A setter on a fresh URL (whose `searchParams` was read first): the components afterwards.
#[rustfmt::skip]
const SETTER_CASES: &[(&str, &str, &str, Components)] = &[
    ("http://a/b", "protocol", "https", ["https://a/b", "https://a", "https:", "", "", "a", "a", "", "/b", "", ""]),
    ("http://a/b", "protocol", "foo", ["http://a/b", "http://a", "http:", "", "", "a", "a", "", "/b", "", ""]),
    ("foo://a/b", "protocol", "bar:x", ["bar://a/b", "null", "bar:", "", "", "a", "a", "", "/b", "", ""]),
    ("http://a:8080/", "protocol", "ws", ["ws://a:8080/", "ws://a:8080", "ws:", "", "", "a:8080", "a", "8080", "/", "", ""]),
    ("http://a:443/", "protocol", "https", ["https://a/", "https://a", "https:", "", "", "a", "a", "", "/", "", ""]),
    ("http://a/", "username", "us er@:", ["http://us%20er%40%3A@a/", "http://a", "http:", "us%20er%40%3A", "", "a", "a", "", "/", "", ""]),
    ("http://a/", "password", "p@ss:w", ["http://:p%40ss%3Aw@a/", "http://a", "http:", "", "p%40ss%3Aw", "a", "a", "", "/", "", ""]),
    ("file:///x", "username", "u", ["file:///x", "null", "file:", "", "", "", "", "", "/x", "", ""]),
    ("http://a/b", "host", "Example.COM:8080", ["http://example.com:8080/b", "http://example.com:8080", "http:", "", "", "example.com:8080", "example.com", "8080", "/b", "", ""]),
    ("http://a/b", "host", "x.com:99999", ["http://x.com/b", "http://x.com", "http:", "", "", "x.com", "x.com", "", "/b", "", ""]),
    ("http://a:9/b", "host", "y", ["http://y:9/b", "http://y:9", "http:", "", "", "y:9", "y", "9", "/b", "", ""]),
    ("http://a/b", "host", "", ["http://a/b", "http://a", "http:", "", "", "a", "a", "", "/b", "", ""]),
    ("http://a:9/b", "hostname", "z.com:1", ["http://a:9/b", "http://a:9", "http:", "", "", "a:9", "a", "9", "/b", "", ""]),
    ("http://a/b", "hostname", "[::2]", ["http://[::2]/b", "http://[::2]", "http:", "", "", "[::2]", "[::2]", "", "/b", "", ""]),
    ("http://a/b", "port", "8080abc", ["http://a:8080/b", "http://a:8080", "http:", "", "", "a:8080", "a", "8080", "/b", "", ""]),
    ("http://a:1/b", "port", "", ["http://a/b", "http://a", "http:", "", "", "a", "a", "", "/b", "", ""]),
    ("http://a/b", "port", "80", ["http://a/b", "http://a", "http:", "", "", "a", "a", "", "/b", "", ""]),
    ("http://a/b", "port", "x", ["http://a/b", "http://a", "http:", "", "", "a", "a", "", "/b", "", ""]),
    ("http://a/b", "pathname", "/x y/../z?#", ["http://a/z%3F%23", "http://a", "http:", "", "", "a", "a", "", "/z%3F%23", "", ""]),
    ("http://a/b", "pathname", "noslash", ["http://a/noslash", "http://a", "http:", "", "", "a", "a", "", "/noslash", "", ""]),
    ("foo://a/b", "pathname", "q", ["foo://a/q", "null", "foo:", "", "", "a", "a", "", "/q", "", ""]),
    ("data:x", "pathname", "y", ["data:x", "null", "data:", "", "", "", "", "", "x", "", ""]),
    ("http://a/b?x", "search", "?a=1 2&b='", ["http://a/b?a=1%202&b=%27", "http://a", "http:", "", "", "a", "a", "", "/b", "?a=1%202&b=%27", ""]),
    ("http://a/b?x", "search", "", ["http://a/b", "http://a", "http:", "", "", "a", "a", "", "/b", "", ""]),
    ("http://a/b#h", "hash", "#x y", ["http://a/b#x%20y", "http://a", "http:", "", "", "a", "a", "", "/b", "", "#x%20y"]),
    ("http://a/b#h", "hash", "", ["http://a/b", "http://a", "http:", "", "", "a", "a", "", "/b", "", ""]),
    ("http://a/b", "href", "https://c/d?e=f", ["https://c/d?e=f", "https://c", "https:", "", "", "c", "c", "", "/d", "?e=f", ""]),
    ("file:///x", "host", "h", ["file://h/x", "null", "file:", "", "", "h", "h", "", "/x", "", ""]),
    ("file://h/x", "host", "", ["file:///x", "null", "file:", "", "", "", "", "", "/x", "", ""]),
    ("mailto:x", "host", "h", ["mailto:x", "null", "mailto:", "", "", "", "", "", "x", "", ""]),
];

async fn parsing_matches_the_table(make: MakeEngine) {
    let cases: Vec<Value> = PARSE_CASES
        .iter()
        .map(|(input, base, _)| json!([input, base]))
        .collect();
    let v = respond(
        make,
        r#"const names = JSON.parse(components);
           const out = cases.map(([input, base]) => {
             try {
               const u = base === null ? new URL(input) : new URL(input, base);
               return names.map((k) => u[k]);
             } catch (e) {
               return e instanceof TypeError && e.message.startsWith("Invalid URL") ? null : `${e.name}: ${e.message}`;
             }
           });
           Lit.Actions.setResponse({ response: JSON.stringify(out) });"#,
        &[("cases", json!(cases)), ("components", json!(COMPONENTS))],
    )
    .await;
    let got = v.as_array().expect("an array");
    assert_eq!(got.len(), PARSE_CASES.len());
    for ((input, base, expected), got) in PARSE_CASES.iter().zip(got) {
        assert_eq!(got, &json!(expected), "new URL({input:?}, {base:?})");
    }
}

async fn setters_match_the_table(make: MakeEngine) {
    let cases: Vec<Value> = SETTER_CASES
        .iter()
        .map(|(href, key, value, _)| json!([href, key, value]))
        .collect();
    let v = respond(
        make,
        r#"const names = JSON.parse(components);
           const out = cases.map(([href, key, value]) => {
             const u = new URL(href);
             const params = u.searchParams;
             u[key] = value;
             // the live `searchParams` follows every setter
             if (JSON.stringify([...params]) !== JSON.stringify([...new URLSearchParams(u.search)])) return "searchParams out of date";
             return names.map((k) => u[k]);
           });
           Lit.Actions.setResponse({ response: JSON.stringify(out) });"#,
        &[("cases", json!(cases)), ("components", json!(COMPONENTS))],
    )
    .await;
    let got = v.as_array().expect("an array");
    assert_eq!(got.len(), SETTER_CASES.len());
    for ((href, key, value, expected), got) in SETTER_CASES.iter().zip(got) {
        assert_eq!(got, &json!(expected), "new URL({href:?}).{key} = {value:?}");
    }
}

async fn search_params_linked_to_the_url(make: MakeEngine) {
    let v = respond(
        make,
        r#"const u = new URL("https://h/p?b=2&a=1&b=3#f");
           const p = u.searchParams;
           const out = { same: u.searchParams === p };
           p.append("c", "x y+z&=\u00e9");
           out.appended = u.href;
           p.set("b", "9");
           out.set = [u.href, p.size];
           p.delete("a");
           out.deleted = u.href;
           p.sort();
           out.sorted = u.href;
           p.delete("b");
           p.delete("c");
           out.emptied = [u.href, u.search];
           u.search = "?z=1&y=2";
           out.fromSearch = [p.get("z"), [...p.keys()]];
           u.href = "http://x/?q=%41%zz%C3%A9+";
           out.fromHref = [...p];
           out.json = JSON.stringify({ u: new URL("http://a/b c") });
           out.string = String(new URL("http://a/")) + " " + new URL("http://a/").toString();
           out.canParse = [URL.canParse("x"), URL.canParse("x", "http://a/"), URL.canParse("http://[::1]")];
           out.loneSurrogate = new URL("http://a/" + String.fromCharCode(0xd800)).pathname;
           out.tags = [Object.prototype.toString.call(u), Object.prototype.toString.call(p),
                       Object.prototype.toString.call(p.keys())];
           Lit.Actions.setResponse({ response: JSON.stringify(out) });"#,
        &[],
    )
    .await;
    assert_eq!(
        v,
        json!({
            "same": true,
            "appended": "https://h/p?b=2&a=1&b=3&c=x+y%2Bz%26%3D%C3%A9#f",
            "set": ["https://h/p?b=9&a=1&c=x+y%2Bz%26%3D%C3%A9#f", 3],
            "deleted": "https://h/p?b=9&c=x+y%2Bz%26%3D%C3%A9#f",
            "sorted": "https://h/p?b=9&c=x+y%2Bz%26%3D%C3%A9#f",
            "emptied": ["https://h/p#f", ""],
            "fromSearch": ["1", ["z", "y"]],
            "fromHref": [["q", "A%zz\u{e9} "]],
            "json": "{\"u\":\"http://a/b%20c\"}",
            "string": "http://a/ http://a/",
            "canParse": [false, true, true],
            "loneSurrogate": "/%EF%BF%BD",
            "tags": ["[object URL]", "[object URLSearchParams]", "[object URLSearchParams Iterator]"],
        })
    );
}

async fn search_params_serialize_and_iterate(make: MakeEngine) {
    let v = respond(
        make,
        r#"const S = URLSearchParams;
           const s = new S("?a=1&a=2&b&=x&&c=%2B%20+");
           const t = new S({ z: "1", a: "2 3", "\u00e9": "~!*()'" });
           const w = new S([["x", "1"], ["y", "2"], ["x", "3"]]);
           const seen = [];
           w.forEach((value, key, obj) => seen.push(key + value + (obj === w)));
           const live = [];
           const l = new S("a=1&b=2");
           for (const [k] of l) { live.push(k); if (k === "a") l.append("c", "3"); }
           let bad;
           try { new S([["a"]]); bad = "accepted"; } catch (e) { bad = e.name; }
           Lit.Actions.setResponse({ response: JSON.stringify({
             fromString: [s.toString(), [...s.entries()], s.getAll("a"), s.get("nope"), s.has("b"),
                          s.has("a", "2"), s.has("a", "3"), s.size],
             fromRecord: t.toString(),
             fromPairs: [w.toString(), [...w.values()], [...w.keys()], String(new S(w))],
             forEach: seen,
             live,
             badPair: bad,
             formEncoding: new S([["sp ace", "+&=%/?#*-._~!'()\u20ac\ud83d\ude00"]]).toString(),
             badPercent: [new S("%zz=%FF%C3").toString(), [...new S("%zz=%FF%C3&x=%E2%82")]],
           }) });"#,
        &[],
    )
    .await;
    assert_eq!(
        v,
        json!({
            "fromString": ["a=1&a=2&b=&=x&c=%2B++", [["a", "1"], ["a", "2"], ["b", ""], ["", "x"], ["c", "+  "]],
                           ["1", "2"], null, true, true, false, 5],
            "fromRecord": "z=1&a=2+3&%C3%A9=%7E%21*%28%29%27",
            "fromPairs": ["x=1&y=2&x=3", ["1", "2", "3"], ["x", "y", "x"], "x=1&y=2&x=3"],
            "forEach": ["x1true", "y2true", "x3true"],
            "live": ["a", "b", "c"],
            "badPair": "TypeError",
            "formEncoding": "sp+ace=%2B%26%3D%25%2F%3F%23*-._%7E%21%27%28%29%E2%82%AC%F0%9F%98%80",
            "badPercent": ["%25zz=%EF%BF%BD%EF%BF%BD", [["%zz", "\u{fffd}\u{fffd}"], ["x", "\u{fffd}"]]],
        })
    );
}

/// `sort` orders by name in UTF-16 code units and keeps the order of equal names.
async fn search_params_sort_is_stable(make: MakeEngine) {
    let v = respond(
        make,
        r#"const p = new URLSearchParams("b=1&a=1&b=2&a=2&B=0&\u00e9=1&e=1&a=0&\ud83d\ude00=x&\uff61=y&z=");
           p.sort();
           const many = new URLSearchParams();
           for (let i = 0; i < 200; i++) many.append(String.fromCharCode(97 + (i * 7) % 3), String(i));
           many.sort();
           const ok = ["a", "b", "c"].every((k) => {
             const vs = many.getAll(k).map(Number);
             return vs.every((x, i) => i === 0 || vs[i - 1] < x);
           });
           Lit.Actions.setResponse({ response: JSON.stringify({ sorted: p.toString(), keys: [...p.keys()], stable: ok,
             grouped: [...many.keys()].join("").replace(/(.)\1*/g, "$1") }) });"#,
        &[],
    )
    .await;
    assert_eq!(
        v,
        json!({
            // UTF-16 order puts U+1F600 (as U+D83D U+DE00) before U+FF61
            "sorted": "B=0&a=1&a=2&a=0&b=1&b=2&e=1&z=&%C3%A9=1&%F0%9F%98%80=x&%EF%BD%A1=y",
            "keys": ["B", "a", "a", "a", "b", "b", "e", "z", "\u{e9}", "\u{1f600}", "\u{ff61}"],
            "stable": true,
            "grouped": "abc",
        })
    );
}

macro_rules! web_url {
    ($engine:ident, $make:path) => {
        mod $engine {
            web_url!(@tests $make;
                parsing_matches_the_table, setters_match_the_table, search_params_linked_to_the_url,
                search_params_serialize_and_iterate, search_params_sort_is_stable);
        }
    };
    (@tests $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name($make).await
            }
        )*
    };
}

web_url!(quickjs, crate::support::quickjs);
web_url!(deno, crate::support::deno);

/// Where the engines differ by design: Deno's native `URL` converts non-ASCII host names (IDNA);
/// the prelude's refuses them with a `TypeError` rather than guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idna_is_deno_only() {
    let code = r#"const out = [];
        for (const input of ["http://m\u00fcnchen.de/", "http://m%C3%BCnchen.de/"]) {
          try { out.push(new URL(input).hostname); } catch (e) { out.push(`${e.name}: ${e.message}`); }
        }
        Lit.Actions.setResponse({ response: JSON.stringify(out) });"#;
    let deno = respond(support::deno, code, &[]).await;
    assert_eq!(deno, json!(["xn--mnchen-3ya.de", "xn--mnchen-3ya.de"]));
    let quickjs = respond(support::quickjs, code, &[]).await;
    for message in quickjs.as_array().unwrap() {
        let message = message.as_str().unwrap();
        assert!(
            message.starts_with("TypeError: IDNA is not supported"),
            "{message}"
        );
    }
}
