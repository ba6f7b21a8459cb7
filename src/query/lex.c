/*
 * lex.c: the PromQL lexer, a port of Prometheus's promql/parser/lex.go (the
 * parts PromQL expressions use; not the series descriptions of its test
 * language), so that tokens, positions and lexical error messages match;
 * and Go's string and rune quoting (strconv.Quote, %q, %#U), which those
 * messages and the printer need.
 *
 * Go's lexer is a state machine whose states are functions; here a state
 * is the lexer's mode plus its flags (inside braces, inside brackets), and
 * the sub-scanners (strings, numbers, identifiers) run to the end of their
 * token within one call.
 */
#include "query/lex.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/banned.h"

#define EOF_RUNE   (-1)
#define RUNE_ERROR 0xFFFD
#define MAX_RUNE   0x10FFFF

/* ------------------------------------------------------------ UTF-8 and quoting */

int32_t query__decode_rune(const char *s, size_t n, int *width)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0) {
        *width = 0;
        return RUNE_ERROR;
    }
    unsigned c = p[0];
    if (c < 0x80) {
        *width = 1;
        return (int32_t)c;
    }
    unsigned lo = 0x80, hi = 0xBF;
    int need;
    int32_t r;
    if (c < 0xC2) {
        goto bad;
    } else if (c < 0xE0) {
        need = 1;
        r = (int32_t)(c & 0x1F);
    } else if (c < 0xF0) {
        need = 2;
        r = (int32_t)(c & 0x0F);
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c < 0xF5) {
        need = 3;
        r = (int32_t)(c & 0x07);
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        goto bad;
    }
    if (n < (size_t)need + 1)
        goto bad;
    for (int i = 1; i <= need; i++) {
        unsigned b = p[i];
        if (b < lo || b > hi)
            goto bad;
        lo = 0x80, hi = 0xBF;
        r = (r << 6) | (int32_t)(b & 0x3F);
    }
    *width = need + 1;
    return r;
bad:
    *width = 1;
    return RUNE_ERROR;
}

void query__encode_rune(struct sbuf *sb, int32_t r)
{
    char b[4];
    size_t n;
    if (r < 0x80) {
        b[0] = (char)r;
        n = 1;
    } else if (r < 0x800) {
        b[0] = (char)(0xC0 | (r >> 6));
        b[1] = (char)(0x80 | (r & 0x3F));
        n = 2;
    } else if (r < 0x10000) {
        b[0] = (char)(0xE0 | (r >> 12));
        b[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        b[2] = (char)(0x80 | (r & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (r >> 18));
        b[1] = (char)(0x80 | ((r >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((r >> 6) & 0x3F));
        b[3] = (char)(0x80 | (r & 0x3F));
        n = 4;
    }
    sbuf_add(sb, b, n);
}

int query__valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int w;
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        if (query__decode_rune(s + i, n - i, &w) == RUNE_ERROR && w == 1)
            return 0;
        i += (size_t)w;
    }
    return 1;
}

/*
 * Go's unicode.IsPrint, approximated: letters, marks, numbers, punctuation
 * and symbols are printable, as is the ASCII space; controls, other spaces,
 * format characters, surrogates, private use and noncharacters are not.
 * Unassigned code points (not printable in Go) count as printable here, so
 * they are printed raw where Go would escape them; either form reads back
 * to the same string.
 */
static int go_isprint(int32_t r)
{
    static const int32_t not_print[][2] = {
        {0x00AD, 0x00AD},   {0x0600, 0x0605},    {0x061C, 0x061C},   {0x06DD, 0x06DD},
        {0x070F, 0x070F},   {0x0890, 0x0891},    {0x08E2, 0x08E2},   {0x1680, 0x1680},
        {0x180E, 0x180E},   {0x2000, 0x200F},    {0x2028, 0x202F},   {0x205F, 0x2064},
        {0x2066, 0x206F},   {0x3000, 0x3000},    {0xD800, 0xF8FF},   {0xFDD0, 0xFDEF},
        {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},    {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
        {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3},  {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
        {0xE0020, 0xE007F}, {0xF0000, 0x10FFFF},
    };
    if (r < 0x20)
        return 0;
    if (r < 0x7F)
        return 1;
    if (r <= 0xA0 || r > MAX_RUNE)
        return 0;
    if ((r & 0xFFFE) == 0xFFFE) /* U+xFFFE and U+xFFFF of every plane */
        return 0;
    for (size_t i = 0; i < sizeof(not_print) / sizeof(not_print[0]); i++)
        if (r >= not_print[i][0] && r <= not_print[i][1])
            return 0;
    return 1;
}

/* strconv's appendEscapedRune. */
static void escape_rune(struct sbuf *sb, int32_t r, char quote)
{
    if (r == quote || r == '\\') {
        sbuf_addc(sb, '\\');
        sbuf_addc(sb, (char)r);
        return;
    }
    if (go_isprint(r)) {
        query__encode_rune(sb, r);
        return;
    }
    switch (r) {
    case '\a':
        sbuf_adds(sb, "\\a");
        return;
    case '\b':
        sbuf_adds(sb, "\\b");
        return;
    case '\f':
        sbuf_adds(sb, "\\f");
        return;
    case '\n':
        sbuf_adds(sb, "\\n");
        return;
    case '\r':
        sbuf_adds(sb, "\\r");
        return;
    case '\t':
        sbuf_adds(sb, "\\t");
        return;
    case '\v':
        sbuf_adds(sb, "\\v");
        return;
    }
    if (r >= 0 && (r < ' ' || r == 0x7F)) {
        sbuf_addf(sb, "\\x%02x", (unsigned)r);
        return;
    }
    if (r < 0 || r > MAX_RUNE || (r >= 0xD800 && r < 0xE000))
        r = RUNE_ERROR;
    if (r < 0x10000)
        sbuf_addf(sb, "\\u%04x", (unsigned)r);
    else
        sbuf_addf(sb, "\\U%08x", (unsigned)r);
}

void query__quote(struct sbuf *sb, const char *s, size_t n)
{
    sbuf_addc(sb, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            escape_rune(sb, c, '"');
            i++;
            continue;
        }
        int w;
        int32_t r = query__decode_rune(s + i, n - i, &w);
        if (w == 1 && r == RUNE_ERROR)
            sbuf_addf(sb, "\\x%02x", c);
        else if (r == RUNE_ERROR) /* Go prints it as is, but PromQL refuses it in strings */
            sbuf_adds(sb, "\\ufffd");
        else
            escape_rune(sb, r, '"');
        i += (size_t)w;
    }
    sbuf_addc(sb, '"');
}

void query__quote_prefix(struct sbuf *sb, const char *s, size_t n, size_t runes)
{
    size_t i = 0;
    for (size_t k = 0; k < runes && i < n; k++) {
        int w = 1;
        if ((unsigned char)s[i] >= 0x80)
            query__decode_rune(s + i, n - i, &w);
        i += (size_t)w;
    }
    query__quote(sb, s, i);
}

void query__quote_rune(struct sbuf *sb, int32_t r)
{
    if (r < 0 || r > MAX_RUNE || (r >= 0xD800 && r < 0xE000))
        r = RUNE_ERROR;
    sbuf_addc(sb, '\'');
    escape_rune(sb, r, '\'');
    sbuf_addc(sb, '\'');
}

/* fmt's %#U: U+0063 'c' (the quoted form only for printable runes). */
static void format_U(struct sbuf *sb, int32_t r)
{
    sbuf_addf(sb, "U+%04X", (unsigned)r);
    if (go_isprint(r)) {
        sbuf_adds(sb, " '");
        query__encode_rune(sb, r);
        sbuf_addc(sb, '\'');
    }
}

/* ------------------------------------------------------------------ keywords */

static const struct {
    const char *word;
    enum query__tok tok;
} keywords[] = {
    {"and", QT_LAND},
    {"or", QT_LOR},
    {"unless", QT_LUNLESS},
    {"atan2", QT_ATAN2},
    {"sum", QT_SUM},
    {"avg", QT_AVG},
    {"count", QT_COUNT},
    {"min", QT_MIN},
    {"max", QT_MAX},
    {"group", QT_GROUP},
    {"stddev", QT_STDDEV},
    {"stdvar", QT_STDVAR},
    {"topk", QT_TOPK},
    {"bottomk", QT_BOTTOMK},
    {"count_values", QT_COUNT_VALUES},
    {"quantile", QT_QUANTILE},
    {"limitk", QT_LIMITK},
    {"limit_ratio", QT_LIMIT_RATIO},
    {"offset", QT_OFFSET},
    {"smoothed", QT_SMOOTHED},
    {"anchored", QT_ANCHORED},
    {"by", QT_BY},
    {"without", QT_WITHOUT},
    {"on", QT_ON},
    {"ignoring", QT_IGNORING},
    {"group_left", QT_GROUP_LEFT},
    {"group_right", QT_GROUP_RIGHT},
    {"fill", QT_FILL},
    {"fill_left", QT_FILL_LEFT},
    {"fill_right", QT_FILL_RIGHT},
    {"bool", QT_BOOL},
    {"start", QT_START},
    {"end", QT_END},
    {"step", QT_STEP},
    {"range", QT_RANGE},
    {"max_of", QT_MAX_OF},
    {"min_of", QT_MIN_OF},
    {"inf", QT_NUMBER},
    {"nan", QT_NUMBER},
};

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int word_is(const char *word, size_t len, const char *kw)
{
    size_t k = strlen(kw);
    if (k != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (ascii_lower((unsigned char)word[i]) != kw[i])
            return 0;
    return 1;
}

enum query__tok query__keyword(const char *word, size_t len)
{
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
        if (word_is(word, len, keywords[i].word))
            return keywords[i].tok;
    return QT_EOF;
}

/* --------------------------------------------------------------------- lexer */

void query__lex_init(struct query__lexer *l, const char *src, size_t len)
{
    memset(l, 0, sizeof(*l));
    l->src = src;
    l->len = len;
    l->mode = QL_STATEMENTS;
}

static int32_t next(struct query__lexer *l)
{
    if (l->pos >= l->len) {
        l->width = 0;
        return EOF_RUNE;
    }
    int w;
    int32_t r = query__decode_rune(l->src + l->pos, l->len - l->pos, &w);
    l->width = (size_t)w;
    l->pos += l->width;
    return r;
}

static void backup(struct query__lexer *l)
{
    l->pos -= l->width;
}

static int32_t peek(struct query__lexer *l)
{
    int32_t r = next(l);
    backup(l);
    return r;
}

static int in_set(int32_t r, const char *set)
{
    return r > 0 && r < 0x80 && strchr(set, (int)r) != NULL;
}

static int accept(struct query__lexer *l, const char *set)
{
    if (in_set(next(l), set))
        return 1;
    backup(l);
    return 0;
}

static int is(struct query__lexer *l, const char *set)
{
    return in_set(peek(l), set);
}

static void accept_run(struct query__lexer *l, const char *set)
{
    while (in_set(next(l), set))
        ;
    backup(l);
}

static int is_space(int32_t r)
{
    return r == ' ' || r == '\t' || r == '\n' || r == '\r';
}

static int is_digit(int32_t r)
{
    return r >= '0' && r <= '9';
}

static int is_alpha(int32_t r)
{
    return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
}

static int is_alnum(int32_t r)
{
    return is_alpha(r) || is_digit(r);
}

static void emit(struct query__lexer *l, struct query__token *t, enum query__tok type)
{
    t->type = type;
    t->pos = (uint32_t)l->start;
    t->len = (uint32_t)(l->pos - l->start);
    l->start = l->pos;
}

static void ignore(struct query__lexer *l)
{
    l->start = l->pos;
}

/* An error token at the start of the current token; the lexer then only returns EOF. */
static int errorf(struct query__lexer *l, struct query__token *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errorf(struct query__lexer *l, struct query__token *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err, sizeof(l->err), fmt, ap);
    va_end(ap);
    t->type = QT_ERROR;
    t->pos = (uint32_t)l->start;
    t->len = 0;
    l->mode = QL_DONE;
    return 1;
}

/* An error whose message quotes a rune: prefix + %q(r) + suffix. */
static int error_rune(struct query__lexer *l, struct query__token *t, const char *prefix, int32_t r,
                      const char *suffix)
{
    struct sbuf sb;
    sbuf_init(&sb, sizeof(l->err));
    sbuf_adds(&sb, prefix);
    query__quote_rune(&sb, r);
    sbuf_adds(&sb, suffix);
    errorf(l, t, "%s", sb.buf);
    sbuf_release(&sb);
    return 1;
}

/* An error whose message quotes the text scanned so far: prefix + %q(text). */
static int error_text(struct query__lexer *l, struct query__token *t, const char *prefix)
{
    struct sbuf sb;
    sbuf_init(&sb, sizeof(l->err));
    sbuf_adds(&sb, prefix);
    query__quote(&sb, l->src + l->start, l->pos - l->start);
    errorf(l, t, "%s", sb.buf);
    sbuf_release(&sb);
    return 1;
}

static int error_U(struct query__lexer *l, struct query__token *t, const char *prefix, int32_t r,
                   const char *suffix)
{
    struct sbuf sb;
    sbuf_init(&sb, sizeof(l->err));
    sbuf_adds(&sb, prefix);
    format_U(&sb, r);
    sbuf_adds(&sb, suffix);
    errorf(l, t, "%s", sb.buf);
    sbuf_release(&sb);
    return 1;
}

static void skip_spaces(struct query__lexer *l)
{
    while (is_space(peek(l)))
        next(l);
    ignore(l);
}

static int lex_comment(struct query__lexer *l, struct query__token *t)
{
    l->pos++; /* '#' */
    int32_t r = next(l);
    while (r != '\r' && r != '\n' && r != EOF_RUNE)
        r = next(l);
    backup(l);
    emit(l, t, QT_COMMENT);
    return 1;
}

/* An escape sequence in a quoted string; the backslash has been read. Returns 1 on an error. */
static int lex_escape(struct query__lexer *l, struct query__token *t)
{
    int n;
    uint32_t base, max;
    int32_t ch = next(l);
    switch (ch) {
    case 'a':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
    case 'v':
    case '\\':
        return 0;
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        n = 3, base = 8, max = 255;
        break;
    case 'x':
        ch = next(l);
        n = 2, base = 16, max = 255;
        break;
    case 'u':
        ch = next(l);
        n = 4, base = 16, max = MAX_RUNE;
        break;
    case 'U':
        ch = next(l);
        n = 8, base = 16, max = MAX_RUNE;
        break;
    case EOF_RUNE:
        return errorf(l, t, "escape sequence not terminated");
    default:
        if (ch == l->string_open)
            return 0;
        return error_U(l, t, "unknown escape sequence ", ch, "");
    }
    uint32_t x = 0;
    while (n > 0) {
        uint32_t d = 16;
        if (ch >= '0' && ch <= '9')
            d = (uint32_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (uint32_t)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (uint32_t)(ch - 'A' + 10);
        if (d >= base) {
            if (ch == EOF_RUNE)
                return errorf(l, t, "escape sequence not terminated");
            return error_U(l, t, "illegal character ", ch, " in escape sequence");
        }
        x = x * base + d;
        n--;
        if (n > 0)
            ch = next(l);
    }
    if (x > max || (x >= 0xD800 && x < 0xE000))
        return errorf(l, t, "escape sequence is an invalid Unicode code point");
    return 0;
}

static int lex_string(struct query__lexer *l, struct query__token *t)
{
    for (;;) {
        int32_t r = next(l);
        if (r == '\\') {
            if (lex_escape(l, t))
                return 1;
        } else if (r == RUNE_ERROR) {
            return errorf(l, t, "invalid UTF-8 rune");
        } else if (r == EOF_RUNE || r == '\n') {
            return errorf(l, t, "unterminated quoted string");
        } else if (r == l->string_open) {
            break;
        }
    }
    emit(l, t, QT_STRING);
    return 1;
}

static int lex_raw_string(struct query__lexer *l, struct query__token *t)
{
    for (;;) {
        int32_t r = next(l);
        if (r == RUNE_ERROR)
            return errorf(l, t, "invalid UTF-8 rune");
        if (r == EOF_RUNE)
            return errorf(l, t, "unterminated raw string");
        if (r == l->string_open)
            break;
    }
    emit(l, t, QT_STRING);
    return 1;
}

/*
 * Scan a number: decimal, hex, octal or float, with Go's underscores. The
 * text is not necessarily a valid number; the parser converts and checks it.
 */
static int scan_number(struct query__lexer *l)
{
    static const char dec[] = "0123456789", hex[] = "0123456789abcdefABCDEF";
    size_t initial = l->pos;
    const char *digits = dec;
    if (accept(l, "0") && accept(l, "xX")) {
        accept(l, "_"); /* 0X_1F */
        digits = hex;
    }
    accept(l, ".");
    accept(l, digits);
    int dot = 0, exponent = 0;
    while (is(l, digits) || is(l, ".") || is(l, "_") || is(l, "eE")) {
        if (is(l, ".") && dot) {
            accept(l, ".");
            return 0;
        }
        if (is(l, "eE") && exponent) {
            accept(l, "eE");
            return 0;
        }
        if (accept(l, ".")) {
            dot = 1;
            if (accept(l, "_."))
                return 0;
            if (digits == hex) /* no fractional hex literals */
                return 0;
            continue;
        }
        if (accept(l, "eE")) {
            exponent = 1;
            accept(l, "+-");
            if (accept(l, "._eE") || peek(l) == EOF_RUNE)
                return 0;
            continue;
        }
        if (accept(l, "_")) {
            if (accept(l, "._eE") || peek(l) == EOF_RUNE)
                return 0;
            continue;
        }
        accept_run(l, digits);
    }
    if (l->pos == initial)
        return 0;
    return !is_alnum(peek(l));
}

/* The unit part of a duration (5m, 1h30m, 250ms); the digits have been read. */
static int accept_remaining_duration(struct query__lexer *l)
{
    if (!accept(l, "smhdwy"))
        return 0;
    accept(l, "s"); /* ms; bad units such as hs are refused when the duration is parsed */
    while (accept(l, "0123456789")) {
        while (accept(l, "0123456789"))
            ;
        if (!accept(l, "smhdw")) /* y can only come first */
            return 0;
        accept(l, "s");
    }
    return !is_alnum(next(l));
}

static int lex_number_or_duration(struct query__lexer *l, struct query__token *t)
{
    l->mode = QL_STATEMENTS;
    if (scan_number(l)) {
        emit(l, t, QT_NUMBER);
        return 1;
    }
    if (accept_remaining_duration(l)) {
        backup(l);
        emit(l, t, QT_DURATION);
        return 1;
    }
    return error_text(l, t, "bad number or duration syntax: ");
}

static int is_duration_keyword_start(int32_t r)
{
    r = ascii_lower((int)r);
    return r == 's' || r == 'r' || r == 'm';
}

/* step, range, max_of or min_of inside brackets; the first letter has been read. */
static int scan_duration_keyword(struct query__lexer *l, struct query__token *t)
{
    while (is_alpha(next(l)))
        ;
    backup(l);
    const char *w = l->src + l->start;
    size_t n = l->pos - l->start;
    enum query__tok tok = word_is(w, n, "step")     ? QT_STEP
                          : word_is(w, n, "range")  ? QT_RANGE
                          : word_is(w, n, "max_of") ? QT_MAX_OF
                          : word_is(w, n, "min_of") ? QT_MIN_OF
                                                    : QT_EOF;
    if (tok == QT_EOF)
        return 0;
    emit(l, t, tok);
    return 1;
}

/* Is the next non-space character '(' (fill, fill_left and fill_right are keywords only then)? */
static int followed_by_paren(const struct query__lexer *l)
{
    for (size_t p = l->pos; p < l->len; p++)
        if (!is_space((unsigned char)l->src[p]))
            return l->src[p] == '(';
    return 0;
}

static int lex_keyword_or_identifier(struct query__lexer *l, struct query__token *t)
{
    int32_t r;
    do
        r = next(l);
    while (is_alnum(r) || r == ':');
    backup(l);
    const char *w = l->src + l->start;
    size_t n = l->pos - l->start;
    enum query__tok kw = query__keyword(w, n);
    if (kw != QT_EOF) {
        if ((kw == QT_FILL || kw == QT_FILL_LEFT || kw == QT_FILL_RIGHT) && !followed_by_paren(l))
            kw = QT_IDENTIFIER;
        emit(l, t, kw);
    } else {
        emit(l, t, memchr(w, ':', n) ? QT_METRIC_IDENTIFIER : QT_IDENTIFIER);
    }
    return 1;
}

static int lex_inside_braces(struct query__lexer *l, struct query__token *t)
{
    if (l->pos < l->len && l->src[l->pos] == '#')
        return lex_comment(l, t);
    int32_t r = next(l);
    if (r == EOF_RUNE)
        return errorf(l, t, "unexpected end of input inside braces");
    if (is_space(r)) {
        skip_spaces(l);
        return 0;
    }
    if (is_alpha(r)) {
        while (is_alnum(next(l)))
            ;
        backup(l);
        emit(l, t, QT_IDENTIFIER);
        return 1;
    }
    switch (r) {
    case ',':
        emit(l, t, QT_COMMA);
        return 1;
    case '"':
    case '\'':
        l->string_open = r;
        return lex_string(l, t);
    case '`':
        l->string_open = r;
        return lex_raw_string(l, t);
    case '=':
        if (next(l) == '~') {
            emit(l, t, QT_EQL_REGEX);
            return 1;
        }
        backup(l);
        emit(l, t, QT_EQL);
        return 1;
    case '!': {
        int32_t nr = next(l);
        if (nr == '~') {
            emit(l, t, QT_NEQ_REGEX);
            return 1;
        }
        if (nr == '=') {
            emit(l, t, QT_NEQ);
            return 1;
        }
        return error_rune(l, t, "unexpected character after '!' inside braces: ", nr, "");
    }
    case '{':
        return error_rune(l, t, "unexpected left brace ", r, "");
    case '}':
        emit(l, t, QT_RIGHT_BRACE);
        l->brace_open = 0;
        return 1;
    default:
        return error_rune(l, t, "unexpected character inside braces: ", r, "");
    }
}

/* Inside brackets, before the first duration or after an operator of a duration expression. */
static int lex_duration_expr(struct query__lexer *l, struct query__token *t)
{
    int32_t r = next(l);
    if (r == EOF_RUNE)
        return errorf(l, t, "unexpected end of input in duration expression");
    if (is_space(r)) {
        skip_spaces(l);
        return 0;
    }
    switch (r) {
    case ']':
        emit(l, t, QT_RIGHT_BRACKET);
        l->bracket_open = 0;
        l->got_colon = 0;
        l->mode = QL_STATEMENTS;
        return 1;
    case ':':
        emit(l, t, QT_COLON);
        if (!l->got_duration)
            return errorf(l, t, "unexpected colon before duration in duration expression");
        if (l->got_colon)
            return errorf(l, t, "unexpected repeated colon in duration expression");
        l->got_colon = 1;
        return 1;
    case '(':
        emit(l, t, QT_LEFT_PAREN);
        l->paren_depth++;
        return 1;
    case ')':
        emit(l, t, QT_RIGHT_PAREN);
        if (--l->paren_depth < 0)
            return error_rune(l, t, "unexpected right parenthesis ", r, "");
        return 1;
    case '+':
        emit(l, t, QT_ADD);
        return 1;
    case '-':
        emit(l, t, QT_SUB);
        return 1;
    case '*':
        emit(l, t, QT_MUL);
        return 1;
    case '/':
        emit(l, t, QT_DIV);
        return 1;
    case '%':
        emit(l, t, QT_MOD);
        return 1;
    case '^':
        emit(l, t, QT_POW);
        return 1;
    case ',':
        emit(l, t, QT_COMMA);
        return 1;
    }
    if (is_duration_keyword_start(r)) {
        if (scan_duration_keyword(l, t))
            return 1;
        return error_rune(l, t, "unexpected character in duration expression: ", r, "");
    }
    if (is_digit(r) || (r == '.' && is_digit(peek(l)))) {
        backup(l);
        l->got_duration = 1;
        return lex_number_or_duration(l, t);
    }
    return error_rune(l, t, "unexpected character in duration expression: ", r, "");
}

static int lex_statements(struct query__lexer *l, struct query__token *t)
{
    if (l->pos < l->len && l->src[l->pos] == '#')
        return lex_comment(l, t);
    int32_t r = next(l);
    if (r == EOF_RUNE) {
        if (l->paren_depth != 0)
            return errorf(l, t, "unclosed left parenthesis");
        if (l->bracket_open)
            return errorf(l, t, "unclosed left bracket");
        emit(l, t, QT_EOF);
        l->mode = QL_DONE;
        return 1;
    }
    if (is_space(r)) {
        skip_spaces(l);
        return 0;
    }
    if (is_digit(r) || (r == '.' && is_digit(peek(l)))) {
        backup(l);
        return lex_number_or_duration(l, t);
    }
    if (is_alpha(r) || r == ':') {
        if (!l->bracket_open) {
            backup(l);
            return lex_keyword_or_identifier(l, t);
        }
        if (r == ':') {
            if (l->got_colon)
                return error_rune(l, t, "unexpected colon ", r, "");
            emit(l, t, QT_COLON);
            l->got_colon = 1;
            return 1;
        }
        if (is_duration_keyword_start(r) && scan_duration_keyword(l, t))
            return 1;
        return error_rune(l, t, "unexpected character: ", r, ", expected ':'");
    }
    switch (r) {
    case ',':
        emit(l, t, QT_COMMA);
        return 1;
    case '*':
        emit(l, t, QT_MUL);
        return 1;
    case '/':
        emit(l, t, QT_DIV);
        return 1;
    case '%':
        emit(l, t, QT_MOD);
        return 1;
    case '+':
        emit(l, t, QT_ADD);
        return 1;
    case '-':
        emit(l, t, QT_SUB);
        return 1;
    case '^':
        emit(l, t, QT_POW);
        return 1;
    case '=': {
        int32_t n = peek(l);
        if (n == '=') {
            next(l);
            emit(l, t, QT_EQLC);
            return 1;
        }
        if (n == '~')
            return error_rune(l, t, "unexpected character after '=': ", n, "");
        emit(l, t, QT_EQL);
        return 1;
    }
    case '!': {
        int32_t n = next(l);
        if (n != '=')
            return error_rune(l, t, "unexpected character after '!': ", n, "");
        emit(l, t, QT_NEQ);
        return 1;
    }
    case '<':
    case '>': {
        int32_t n = peek(l);
        if (n == '=' || n == '/')
            next(l);
        emit(l, t,
             r == '<' ? (n == '='   ? QT_LTE
                         : n == '/' ? QT_TRIM_UPPER
                                    : QT_LSS)
                      : (n == '='   ? QT_GTE
                         : n == '/' ? QT_TRIM_LOWER
                                    : QT_GTR));
        return 1;
    }
    case '"':
    case '\'':
        l->string_open = r;
        return lex_string(l, t);
    case '`':
        l->string_open = r;
        return lex_raw_string(l, t);
    case '(':
        emit(l, t, QT_LEFT_PAREN);
        l->paren_depth++;
        return 1;
    case ')':
        emit(l, t, QT_RIGHT_PAREN);
        if (--l->paren_depth < 0)
            return error_rune(l, t, "unexpected right parenthesis ", r, "");
        return 1;
    case '{':
        emit(l, t, QT_LEFT_BRACE);
        l->brace_open = 1;
        return 1;
    case '[':
        if (l->bracket_open)
            return error_rune(l, t, "unexpected left bracket ", r, "");
        l->got_colon = 0;
        emit(l, t, QT_LEFT_BRACKET);
        if (is_space(peek(l)))
            skip_spaces(l);
        l->bracket_open = 1;
        l->mode = QL_DURATION_EXPR;
        return 1;
    case ']':
        if (!l->bracket_open)
            return error_rune(l, t, "unexpected right bracket ", r, "");
        emit(l, t, QT_RIGHT_BRACKET);
        l->bracket_open = 0;
        return 1;
    case '@':
        emit(l, t, QT_AT);
        return 1;
    default:
        return error_rune(l, t, "unexpected character: ", r, "");
    }
}

void query__lex_next(struct query__lexer *l, struct query__token *t)
{
    for (;;) {
        int done;
        switch (l->mode) {
        case QL_DONE:
            emit(l, t, QT_EOF);
            return;
        case QL_DURATION_EXPR:
            done = lex_duration_expr(l, t);
            break;
        default:
            done = l->brace_open ? lex_inside_braces(l, t) : lex_statements(l, t);
            break;
        }
        if (done)
            return;
    }
}
