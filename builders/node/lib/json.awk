# json.awk: the little JSON the weft builders need, in POSIX awk (no jq).
#
# Reads one JSON object from standard input. Run it with LC_ALL=C so strings are bytes.
# Parameters come from the environment (ENVIRON does not rewrite backslashes as -v does):
#
#   JSON_OP=get JSON_KEY=<member> [JSON_OUT=<file>] [JSON_ENC=base64]
#       Prints the top-level member: a string decoded, any other value as written, nothing
#       when the member is absent or null. JSON_ENC=base64 prints base64 of that instead.
#       With JSON_OUT the value goes to that file (created with the caller's umask).
#   JSON_OP=render JSON_CONFIG=<JSON object text> JSON_CONFIG_NAME=<its name, for errors>
#       Prints the object again with every top-level string rendered as a template:
#       {{.key}} (also {{ .key }}, {{- .key -}}) becomes the value of key in JSON_CONFIG.
#       A key missing from JSON_CONFIG is an error naming the key and the member.
#
# JSON_WHAT names the input in error messages. Exit status 0 on success; 2 with a message on
# standard error when the input is not a JSON object or a template cannot be rendered.

{ TEXT = TEXT $0 "\n" }

END {
    init()
    WHAT = ENVIRON["JSON_WHAT"]
    if (WHAT == "") WHAT = "JSON input"
    parse_document(TEXT, "D")
    op = ENVIRON["JSON_OP"]
    if (op == "get") do_get()
    else if (op == "render") do_render()
    else fail("unknown JSON_OP \"" op "\" (expected get or render)")
    exit 0
}

function init(   i) {
    B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    HEXDIGITS = "0123456789abcdef"
    for (i = 1; i < 256; i++) ORD[sprintf("%c", i)] = i
}

function fail(msg) {
    printf "%s: %s\n", WHAT, msg > "/dev/stderr"
    exit 2
}

function ch() { return substr(S, P, 1) }

function at(   near) {
    if (P > N) return "at the end of the input"
    near = substr(S, P, 12)
    gsub(/[\t\r\n]+/, " ", near)
    return "at byte " P " (near \"" near "\")"
}

function skip_ws(   c) {
    for (;;) {
        c = substr(S, P, 1)
        if (c == " " || c == "\t" || c == "\n" || c == "\r") P++
        else return
    }
}

# Parse `text`, which must be one JSON object, into the store named `st`:
# CNT[st] members in first-seen order, KEY[st,i] decoded names, RAWKEY[st,i] names as
# written, and by decoded name T[st,k] type, R[st,k] value as written, V[st,k] decoded string.
# A repeated name keeps its first position and its last value, as Go's decoder does.
function parse_document(text, st,   c, k, rk) {
    S = text; N = length(S); P = 1
    CNT[st] = 0
    skip_ws()
    if (ch() != "{") fail("expected a JSON object " at())
    P++
    skip_ws()
    if (ch() == "}") { P++ } else {
        for (;;) {
            skip_ws()
            if (ch() != "\"") fail("expected a member name in double quotes " at())
            parse_string()
            k = VS; rk = VR
            skip_ws()
            if (ch() != ":") fail("expected ':' after member \"" k "\" " at())
            P++
            skip_ws()
            parse_value(1)
            if (!((st, k) in T)) { CNT[st]++; KEY[st, CNT[st]] = k; RAWKEY[st, CNT[st]] = rk }
            T[st, k] = VT; R[st, k] = VR; V[st, k] = VS
            skip_ws()
            c = ch(); P++
            if (c == ",") continue
            if (c == "}") break
            P--
            fail("expected ',' or '}' " at())
        }
    }
    skip_ws()
    if (P <= N) fail("unexpected text after the JSON object " at())
}

# Sets VT (string, number, bool, null, object, array), VR (as written; for strings without
# the quotes) and VS (decoded string, strings only).
function parse_value(depth,   c, start, rest) {
    if (depth > 64) fail("JSON nested too deeply")
    c = ch(); start = P
    if (c == "\"") { parse_string(); VT = "string"; return }
    if (c == "{" || c == "[") {
        skip_container(depth)
        VT = (c == "{") ? "object" : "array"
        VR = substr(S, start, P - start); VS = ""
        return
    }
    if (substr(S, P, 4) == "true") { P += 4; VT = "bool"; VR = "true"; VS = ""; return }
    if (substr(S, P, 5) == "false") { P += 5; VT = "bool"; VR = "false"; VS = ""; return }
    if (substr(S, P, 4) == "null") { P += 4; VT = "null"; VR = "null"; VS = ""; return }
    rest = substr(S, P, 400)
    if (match(rest, /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/)) {
        VR = substr(rest, 1, RLENGTH); P += RLENGTH; VT = "number"; VS = ""
        return
    }
    fail("expected a JSON value " at())
}

function skip_container(depth,   open, c) {
    open = ch(); P++
    skip_ws()
    if (open == "{" && ch() == "}") { P++; return }
    if (open == "[" && ch() == "]") { P++; return }
    for (;;) {
        skip_ws()
        if (open == "{") {
            if (ch() != "\"") fail("expected a member name in double quotes " at())
            parse_string()
            skip_ws()
            if (ch() != ":") fail("expected ':' " at())
            P++
            skip_ws()
        }
        parse_value(depth + 1)
        skip_ws()
        c = ch(); P++
        if (c == ",") continue
        if (open == "{" && c == "}") return
        if (open == "[" && c == "]") return
        P--
        fail("expected ',' or a closing bracket " at())
    }
}

function parse_string(   start, out, c, e, code, lo) {
    start = P; P++; out = ""
    for (;;) {
        if (P > N) fail("unterminated string starting at byte " start)
        c = substr(S, P, 1)
        if (c == "\"") break
        if (c == "\\") {
            e = substr(S, P + 1, 1)
            if (e == "\"" || e == "\\" || e == "/") out = out e
            else if (e == "n") out = out "\n"
            else if (e == "t") out = out "\t"
            else if (e == "r") out = out "\r"
            else if (e == "b") out = out "\b"
            else if (e == "f") out = out "\f"
            else if (e == "u") {
                code = hex4(P + 2)
                P += 4
                if (code >= 55296 && code < 56320) {
                    if (substr(S, P + 2, 2) != "\\u") fail("unpaired surrogate \\u escape " at())
                    lo = hex4(P + 4)
                    if (lo < 56320 || lo >= 57344) fail("unpaired surrogate \\u escape " at())
                    code = 65536 + (code - 55296) * 1024 + (lo - 56320)
                    P += 6
                } else if (code >= 56320 && code < 57344) {
                    fail("unpaired surrogate \\u escape " at())
                }
                if (code == 0) fail("\\u0000 is not supported " at())
                out = out utf8(code)
            } else fail("invalid escape \\" e " " at())
            P += 2
            continue
        }
        if (ORD[c] < 32) fail("control character inside a string (write it as an escape, e.g. \\n) " at())
        out = out c
        P++
    }
    VR = substr(S, start + 1, P - start - 1)
    VS = out
    P++
}

function hex4(pos,   i, d, v) {
    v = 0
    for (i = 0; i < 4; i++) {
        d = index(HEXDIGITS, tolower(substr(S, pos + i, 1))) - 1
        if (d < 0) fail("invalid \\u escape at byte " pos)
        v = v * 16 + d
    }
    return v
}

function utf8(c) {
    if (c < 128) return sprintf("%c", c)
    if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
    if (c < 65536) return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
    return sprintf("%c%c%c%c", 240 + int(c / 262144), 128 + int(c / 4096) % 64, 128 + int(c / 64) % 64, 128 + c % 64)
}

function json_escape(s,   out, i, n, c, o) {
    out = ""; n = length(s)
    for (i = 1; i <= n; i++) {
        c = substr(s, i, 1)
        if (c == "\"") out = out "\\\""
        else if (c == "\\") out = out "\\\\"
        else {
            o = ORD[c]
            if (o >= 32 && o != 127) out = out c
            else if (c == "\n") out = out "\\n"
            else if (c == "\r") out = out "\\r"
            else if (c == "\t") out = out "\\t"
            else out = out sprintf("\\u%04x", o)
        }
    }
    return out
}

function base64(s,   out, i, n, b1, b2, b3) {
    out = ""; n = length(s)
    for (i = 1; i <= n; i += 3) {
        b1 = ORD[substr(s, i, 1)]
        b2 = (i + 1 <= n) ? ORD[substr(s, i + 1, 1)] : 0
        b3 = (i + 2 <= n) ? ORD[substr(s, i + 2, 1)] : 0
        out = out substr(B64, int(b1 / 4) + 1, 1) substr(B64, (b1 % 4) * 16 + int(b2 / 16) + 1, 1)
        out = out ((i + 1 <= n) ? substr(B64, (b2 % 16) * 4 + int(b3 / 64) + 1, 1) : "=")
        out = out ((i + 2 <= n) ? substr(B64, b3 % 64 + 1, 1) : "=")
    }
    return out
}

function do_get(   k, out, dest) {
    k = ENVIRON["JSON_KEY"]
    out = ""
    if (("D", k) in T) {
        if (T["D", k] == "string") out = V["D", k]
        else if (T["D", k] != "null") out = R["D", k]
    }
    if (ENVIRON["JSON_ENC"] == "base64") out = base64(out)
    dest = ENVIRON["JSON_OUT"]
    if (dest != "") {
        printf "%s", out > dest
        close(dest)
    } else printf "%s", out
}

function do_render(   cfg, i, k, sep) {
    CFGNAME = ENVIRON["JSON_CONFIG_NAME"]
    if (CFGNAME == "") CFGNAME = "the template configuration"
    cfg = ENVIRON["JSON_CONFIG"]
    HAVECFG = 0
    if (cfg ~ /[^ \t\r\n]/) {
        WHAT = CFGNAME
        parse_document(cfg, "C")
        WHAT = ENVIRON["JSON_WHAT"]
        if (WHAT == "") WHAT = "JSON input"
        HAVECFG = 1
    }
    # Render everything first, so a failure prints nothing.
    for (i = 1; i <= CNT["D"]; i++) {
        k = KEY["D", i]
        if (T["D", k] == "string") OUTV[i] = "\"" json_escape(render(V["D", k], k)) "\""
        else OUTV[i] = R["D", k]
    }
    printf "{"
    sep = "\n"
    for (i = 1; i <= CNT["D"]; i++) {
        printf "%s  \"%s\": %s", sep, RAWKEY["D", i], OUTV[i]
        sep = ",\n"
    }
    printf "\n}\n"
}

function render(t, field,   out, i, rest, j, act, name, ty) {
    out = ""
    while ((i = index(t, "{{")) > 0) {
        out = out substr(t, 1, i - 1)
        rest = substr(t, i + 2)
        j = index(rest, "}}")
        if (j == 0) fail("member \"" field "\": \"{{\" without a closing \"}}\"")
        act = substr(rest, 1, j - 1)
        t = substr(rest, j + 2)
        if (act ~ /^-[ \t\r\n]/) { sub(/[ \t\r\n]+$/, "", out); act = substr(act, 2) }
        if (act ~ /[ \t\r\n]-$/) { sub(/^[ \t\r\n]+/, "", t); act = substr(act, 1, length(act) - 1) }
        sub(/^[ \t\r\n]+/, "", act)
        sub(/[ \t\r\n]+$/, "", act)
        if (act !~ /^\.[A-Za-z_][A-Za-z0-9_]*$/) {
            fail("member \"" field "\": unsupported template action {{" act "}}; only {{.key}} is supported")
        }
        name = substr(act, 2)
        if (!HAVECFG) {
            fail("member \"" field "\" uses {{." name "}} but " CFGNAME " is not set (pass it to the builder with propagateEnvironment in core.yaml)")
        }
        if (!(("C", name) in T)) {
            fail("member \"" field "\" uses {{." name "}} but key \"" name "\" is missing from " CFGNAME)
        }
        ty = T["C", name]
        if (ty == "string") out = out V["C", name]
        else if (ty == "number" || ty == "bool") out = out R["C", name]
        else fail("member \"" field "\" uses {{." name "}} but \"" name "\" in " CFGNAME " is " (ty == "null" ? "null" : "an " ty) "; use a string, number or boolean")
    }
    return out t
}
