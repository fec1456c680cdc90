// uwshub: uWebSockets (C++) speaking fanwire's wire contract, for `fanwire
// bench`. Plain epoll through uSockets (LIBUS_NO_SSL), no TLS, no
// compression, pings and idle timeout off unless --ping-interval asks for
// them within uWS's 960 s limit.
//
// Contract (as bench/peers/internal/peer and server/api):
//   GET /ws?topics=a,b          WebSocket; URL topics subscribed before any
//                               publish can reach the loop
//   {"op":"subscribe"|"unsubscribe","topics":[...]}  -> ack / error reply
//   POST /publish/{topic}       body: one JSON value -> {"topic","seq","subscribers"}
//   POST /publish               NDJSON {"topic","data"} -> {"published","results"}
//   GET  /healthz               ok
// Deliveries are {"topic":T,"seq":N,"data":D}, seq per topic from 1.
//
// Fan-out uses uWS's own pub/sub (TopicTree): a publish is queued once and
// drained at the end of the loop pass, corked, so every subscriber gets all
// messages of the pass in one write. Slow clients: 1 MiB of backpressure,
// then uWS drops and closes them (closeOnBackpressureLimit).
//
// Shapes (--publish-thread):
//   true  (default) the control API runs on its own thread and uWS loop. It
//         checks the body, assigns seq, answers at once (subscriber counts
//         mirrored from uWS's subscription events under a mutex) and queues
//         the frames for the WebSocket loop: one uWS::Loop::defer per batch
//         of queued frames, so the loop applies every publish that arrived
//         while it was busy in its next pass, and each subscriber gets them
//         in one write. The publishers never wait for a broadcast.
//   false           both listeners on the one loop: it parses HTTP too and
//         publishes inline; a pass batches only the publishes whose
//         requests arrived together.
#include "App.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

// Limits shared with fanwire's defaults (bench/peers/internal/peer).
constexpr unsigned kMaxMessage = 64 << 10;   // client message cap
constexpr size_t kMaxTopics = 1000;          // subscriptions per connection
constexpr unsigned kMaxPending = 1 << 20;    // unsent bytes per connection
constexpr size_t kMaxBody = 1 << 20;         // publish body cap (413 above)
constexpr size_t kMaxTopicLen = 128;
constexpr int kMaxDepth = 10000;             // JSON nesting, as encoding/json

struct Flags {
    std::string listenHost = "127.0.0.1";
    int listenPort = 8080;
    std::string httpHost = "127.0.0.1";
    int httpPort = 8081;
    double pingSeconds = 30;
    bool publishThread = true;
};

[[noreturn]] void fatal(const std::string &msg) {
    fprintf(stderr, "uwshub: %s\n", msg.c_str());
    exit(1);
}

bool splitHostPort(const std::string &s, std::string &host, int &port) {
    size_t i = s.rfind(':');
    if (i == std::string::npos) return false;
    host = s.substr(0, i);
    if (host.empty()) host = "0.0.0.0";
    char *end = nullptr;
    long p = strtol(s.c_str() + i + 1, &end, 10);
    if (*end || p < 0 || p > 65535) return false;
    port = (int) p;
    return true;
}

// parseDuration reads Go durations such as 30s, 10m, 1h30m, 500ms.
bool parseDuration(const std::string &s, double &secs) {
    secs = 0;
    const char *p = s.c_str();
    if (!*p) return false;
    if (strcmp(p, "0") == 0) return true;
    while (*p) {
        char *end = nullptr;
        double v = strtod(p, &end);
        if (end == p) return false;
        p = end;
        double unit;
        if (strncmp(p, "ms", 2) == 0) unit = 1e-3, p += 2;
        else if (strncmp(p, "us", 2) == 0) unit = 1e-6, p += 2;
        else if (strncmp(p, "ns", 2) == 0) unit = 1e-9, p += 2;
        else if (*p == 's') unit = 1, p++;
        else if (*p == 'm') unit = 60, p++;
        else if (*p == 'h') unit = 3600, p++;
        else return false;
        secs += v * unit;
    }
    return true;
}

Flags parseFlags(int argc, char **argv) {
    Flags f;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a.rfind("--", 0) == 0) a = a.substr(1); // -flag and --flag, as Go's flag package
        std::string val;
        bool hasVal = false;
        if (size_t eq = a.find('='); eq != std::string::npos) {
            val = a.substr(eq + 1), a = a.substr(0, eq), hasVal = true;
        }
        auto next = [&]() -> std::string {
            if (hasVal) return val;
            if (i + 1 >= argc) fatal("flag needs an argument: " + a);
            return argv[++i];
        };
        if (a == "-listen") {
            if (!splitHostPort(next(), f.listenHost, f.listenPort)) fatal("bad --listen address");
        } else if (a == "-http") {
            if (!splitHostPort(next(), f.httpHost, f.httpPort)) fatal("bad --http address");
        } else if (a == "-ping-interval") {
            if (!parseDuration(next(), f.pingSeconds)) fatal("bad --ping-interval");
        } else if (a == "-publish-thread") {
            std::string v = hasVal ? val : "true";
            f.publishThread = v == "true" || v == "1";
        } else if (a == "-compression") {
            fatal("--compression: uwshub is built without zlib (compression off)");
        } else if (a == "-h" || a == "-help") {
            printf("Usage: uwshub [--listen addr] [--http addr] [--ping-interval d] [--publish-thread=true|false]\n");
            exit(0);
        } else {
            fatal("unknown flag " + std::string(argv[i]));
        }
    }
    return f;
}

// ---- JSON: validation and the few fields the contract needs ----

bool validUTF8(std::string_view s) {
    const unsigned char *p = (const unsigned char *) s.data(), *e = p + s.size();
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) { p++; continue; }
        int n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
        else return false;
        if (e - p <= n) return false;
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return false;
        p += n + 1;
    }
    return true;
}

bool isJSONSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trimJSONSpace(std::string_view s) {
    while (!s.empty() && isJSONSpace(s.front())) s.remove_prefix(1);
    while (!s.empty() && isJSONSpace(s.back())) s.remove_suffix(1);
    return s;
}

struct JSON {
    const char *p, *e;
    int depth = 0;

    explicit JSON(std::string_view s) : p(s.data()), e(s.data() + s.size()) {}
    void ws() { while (p < e && isJSONSpace(*p)) p++; }
    bool eat(char c) { ws(); if (p < e && *p == c) { p++; return true; } return false; }
    bool peek(char c) { ws(); return p < e && *p == c; }

    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
    bool hex4(unsigned &v) {
        if (e - p < 4) return false;
        v = 0;
        for (int i = 0; i < 4; i++) {
            int h = hex(p[i]);
            if (h < 0) return false;
            v = v << 4 | (unsigned) h;
        }
        p += 4;
        return true;
    }
    static void putUTF8(std::string &o, unsigned cp) {
        if (cp < 0x80) o += (char) cp;
        else if (cp < 0x800) o += (char) (0xC0 | cp >> 6), o += (char) (0x80 | (cp & 0x3F));
        else if (cp < 0x10000) o += (char) (0xE0 | cp >> 12), o += (char) (0x80 | ((cp >> 6) & 0x3F)), o += (char) (0x80 | (cp & 0x3F));
        else o += (char) (0xF0 | cp >> 18), o += (char) (0x80 | ((cp >> 12) & 0x3F)), o += (char) (0x80 | ((cp >> 6) & 0x3F)), o += (char) (0x80 | (cp & 0x3F));
    }
    // str reads a string; out (if set) gets it decoded.
    bool str(std::string *out) {
        ws();
        if (p >= e || *p != '"') return false;
        p++;
        while (p < e) {
            char c = *p++;
            if (c == '"') return true;
            if ((unsigned char) c < 0x20) return false;
            if (c != '\\') { if (out) *out += c; continue; }
            if (p >= e) return false;
            c = *p++;
            switch (c) {
            case '"': case '\\': case '/': if (out) *out += c; break;
            case 'b': if (out) *out += '\b'; break;
            case 'f': if (out) *out += '\f'; break;
            case 'n': if (out) *out += '\n'; break;
            case 'r': if (out) *out += '\r'; break;
            case 't': if (out) *out += '\t'; break;
            case 'u': {
                unsigned cp;
                if (!hex4(cp)) return false;
                if (cp >= 0xD800 && cp < 0xDC00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                    const char *save = p;
                    p += 2;
                    unsigned lo;
                    if (hex4(lo) && lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else p = save, cp = 0xFFFD;
                } else if (cp >= 0xD800 && cp < 0xE000) {
                    cp = 0xFFFD;
                }
                if (out) putUTF8(*out, cp);
                break;
            }
            default: return false;
            }
        }
        return false;
    }
    bool digits() {
        if (p >= e || *p < '0' || *p > '9') return false;
        while (p < e && *p >= '0' && *p <= '9') p++;
        return true;
    }
    bool num() {
        if (p < e && *p == '-') p++;
        if (p < e && *p == '0') p++;
        else if (!digits()) return false;
        if (p < e && *p == '.') { p++; if (!digits()) return false; }
        if (p < e && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < e && (*p == '+' || *p == '-')) p++;
            if (!digits()) return false;
        }
        return true;
    }
    bool lit(const char *w) {
        size_t n = strlen(w);
        if ((size_t) (e - p) < n || memcmp(p, w, n) != 0) return false;
        p += n;
        return true;
    }
    // value checks and skips one value.
    bool value() {
        ws();
        if (p >= e) return false;
        switch (*p) {
        case '"': return str(nullptr);
        case '{': {
            if (++depth > kMaxDepth) return false;
            p++;
            if (eat('}')) { depth--; return true; }
            do {
                if (!str(nullptr) || !eat(':') || !value()) return false;
            } while (eat(','));
            depth--;
            return eat('}');
        }
        case '[': {
            if (++depth > kMaxDepth) return false;
            p++;
            if (eat(']')) { depth--; return true; }
            do {
                if (!value()) return false;
            } while (eat(','));
            depth--;
            return eat(']');
        }
        case 't': return lit("true");
        case 'f': return lit("false");
        case 'n': return lit("null");
        default: return num();
        }
    }
    bool end() { ws(); return p == e; }
};

// oneValue: s holds exactly one valid JSON value.
bool oneValue(std::string_view s) {
    JSON j(s);
    return j.value() && j.end();
}

// object walks a top-level JSON object, calling field(key, j) for every
// member; field must consume the value. False: not a valid object.
template <typename F>
bool object(std::string_view s, F field) {
    if (!oneValue(s)) return false;
    JSON j(s);
    if (!j.eat('{')) return false;
    if (j.eat('}')) return true;
    do {
        std::string key;
        if (!j.str(&key) || !j.eat(':') || !field(key, j)) return false;
    } while (j.eat(','));
    return j.eat('}');
}

void appendQuoted(std::string &o, std::string_view s) {
    static const char hexd[] = "0123456789abcdef";
    o += '"';
    for (unsigned char c : s) {
        switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\r': o += "\\r"; break;
        case '\t': o += "\\t"; break;
        case '<': case '>': case '&': // as encoding/json
            o += "\\u00", o += hexd[c >> 4], o += hexd[c & 15]; break;
        default:
            if (c < 0x20) o += "\\u00", o += hexd[c >> 4], o += hexd[c & 15];
            else o += (char) c;
        }
    }
    o += '"';
}

bool validTopic(std::string_view t) {
    if (t.empty() || t.size() > kMaxTopicLen) return false;
    for (unsigned char c : t) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == ':' || c == '-')) return false;
    }
    return true;
}

// goQuote is strconv.Quote for the printable ASCII we show in messages.
std::string goQuote(std::string_view s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') o += '\\', o += (char) c;
        else if (c >= 0x20 && c < 0x7f) o += (char) c;
        else { char b[8]; snprintf(b, sizeof b, "\\x%02x", c); o += b; }
    }
    return o + "\"";
}

// ---- client ops ----

std::string errorReply(std::string_view code, std::string_view msg) {
    std::string o = "{\"type\":\"error\",\"code\":";
    appendQuoted(o, code);
    o += ",\"message\":";
    appendQuoted(o, msg);
    return o + "}";
}

std::string ackReply(std::string_view kind, const std::vector<std::string> &topics) {
    std::string o = "{\"type\":\"";
    o += kind;
    o += "\",\"topics\":[";
    for (size_t i = 0; i < topics.size(); i++) {
        if (i) o += ',';
        o += '"', o += topics[i], o += '"';
    }
    return o + "]}";
}

struct Op {
    std::string op;
    std::vector<std::string> topics;
};

// parseOp decodes a client message; the error reply when it is rejected.
bool parseOp(std::string_view msg, Op &op, std::string &err) {
    bool ok = validUTF8(msg) && object(msg, [&](const std::string &key, JSON &j) {
        if (key == "op") {
            if (j.peek('n')) return j.lit("null");
            op.op.clear();
            return j.str(&op.op);
        }
        if (key == "topics") {
            op.topics.clear();
            if (j.peek('n')) return j.lit("null");
            if (!j.eat('[')) return false;
            if (j.eat(']')) return true;
            do {
                std::string t;
                if (!j.str(&t)) return false;
                op.topics.push_back(std::move(t));
            } while (j.eat(','));
            return j.eat(']');
        }
        return j.value();
    });
    if (!ok) {
        err = errorReply("bad_json", "message is not a JSON object of the form {\"op\":...,\"topics\":[...]}");
        return false;
    }
    if (op.op != "subscribe" && op.op != "unsubscribe") {
        err = errorReply("unknown_op", "unknown op " + goQuote(op.op) + ": want \"subscribe\" or \"unsubscribe\"");
        return false;
    }
    if (op.topics.empty()) {
        err = errorReply("missing_topics", "\"topics\" must be a non-empty array of topic names");
        return false;
    }
    for (auto &t : op.topics) {
        if (!validTopic(t)) {
            err = errorReply("invalid_topic", "invalid topic " + goQuote(t) + ": want 1-128 characters of [A-Za-z0-9_.:-]");
            return false;
        }
    }
    return true;
}

// ---- URL topics ----

bool percentDecode(std::string_view in, std::string &out, bool plus) {
    out.clear();
    for (size_t i = 0; i < in.size(); i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int h = JSON::hex(in[i + 1]), l = JSON::hex(in[i + 2]);
            if (h < 0 || l < 0) return false;
            out += (char) (h << 4 | l);
            i += 2;
        } else if (c == '+' && plus) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return true;
}

// urlTopics reads ?topics=a,b (repeatable) as peer.URLTopics does.
bool urlTopics(std::string_view q, std::vector<std::string> &topics, std::string &err) {
    while (!q.empty()) {
        size_t amp = q.find('&');
        std::string_view kv = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
        if (kv.find(';') != std::string_view::npos) {
            err = "bad query string: invalid semicolon separator in query";
            return false;
        }
        if (kv.empty()) continue;
        size_t eq = kv.find('=');
        std::string key, val;
        if (!percentDecode(kv.substr(0, eq), key, true) ||
            !percentDecode(eq == std::string_view::npos ? std::string_view{} : kv.substr(eq + 1), val, true)) {
            err = "bad query string: invalid URL escape";
            return false;
        }
        if (key != "topics") continue;
        std::string_view v = val;
        while (true) {
            size_t comma = v.find(',');
            std::string_view t = v.substr(0, comma);
            if (!t.empty()) {
                if (!validTopic(t)) {
                    err = "invalid topic " + std::string(t) + ": want 1-128 characters of [A-Za-z0-9_.:-]";
                    return false;
                }
                topics.emplace_back(t);
            }
            if (comma == std::string_view::npos) break;
            v = v.substr(comma + 1);
        }
    }
    if (topics.size() > kMaxTopics) {
        err = "too many topics";
        return false;
    }
    return true;
}

// ---- the hub: lives on the WebSocket loop ----

struct PerSocketData {}; // all state is uWS's own (its Subscriber)

uWS::App *wsApp;
uWS::Loop *wsLoop;
std::unordered_map<std::string, uint64_t> seqs;
std::vector<std::string> openTopics; // URL topics from upgrade to open (synchronous)

// The control API assigns seq (it owns seqs) and answers at once; the
// frames go to the WebSocket loop through one queue, so the loop applies
// every publish that arrived while it was busy in one pass. With
// --publish-thread the subscriber counts it answers with are mirrored from
// uWS's subscription events under a mutex.
bool publishThread;
std::mutex countsMu;
std::unordered_map<std::string, unsigned> counts; // publishThread only

unsigned subscribers(std::string_view topic) {
    if (!publishThread) return wsApp->numSubscribers(topic);
    std::lock_guard<std::mutex> g(countsMu);
    auto it = counts.find(std::string(topic));
    return it == counts.end() ? 0 : it->second;
}

void onSubscription(std::string_view topic, int now) {
    std::lock_guard<std::mutex> g(countsMu);
    if (now > 0) counts[std::string(topic)] = (unsigned) now;
    else counts.erase(std::string(topic));
}

struct Frame {
    std::string topic, envelope;
};

std::mutex queueMu;
std::vector<Frame> queue;
bool queued = false; // a drain of queue is scheduled on the WebSocket loop

void publishFrames(std::vector<Frame> &frames) {
    for (auto &f : frames) wsApp->publish(f.topic, f.envelope, uWS::OpCode::TEXT, false);
}

// handOff gives frames, in seq order, to the WebSocket loop.
void handOff(std::vector<Frame> &&frames) {
    if (frames.empty()) return;
    if (!publishThread) return publishFrames(frames);
    bool wake;
    {
        std::lock_guard<std::mutex> g(queueMu);
        if (queue.empty()) queue.swap(frames);
        else for (auto &f : frames) queue.push_back(std::move(f));
        wake = !queued;
        queued = true;
    }
    if (!wake) return;
    wsLoop->defer([] {
        std::vector<Frame> batch;
        {
            std::lock_guard<std::mutex> g(queueMu);
            batch.swap(queue);
            queued = false;
        }
        publishFrames(batch);
    });
}

struct Published {
    uint64_t seq;
    unsigned subscribers;
};

// publish assigns topic's next seq and queues its frame (when anyone listens).
Published publish(std::string_view topic, std::string_view data, std::vector<Frame> &frames) {
    uint64_t seq = ++seqs[std::string(topic)];
    unsigned n = subscribers(topic);
    if (n) {
        std::string env;
        env.reserve(topic.size() + data.size() + 40);
        env += "{\"topic\":\"", env += topic, env += "\",\"seq\":";
        env += std::to_string(seq);
        env += ",\"data\":", env += data, env += '}';
        frames.push_back({std::string(topic), std::move(env)});
    }
    return {seq, n};
}

size_t topicCount(uWS::WebSocket<false, true, PerSocketData> *ws) {
    size_t n = 0;
    ws->iterateTopics([&](std::string_view) { n++; });
    return n;
}

void onMessage(uWS::WebSocket<false, true, PerSocketData> *ws, std::string_view msg, uWS::OpCode code) {
    if (code == uWS::OpCode::BINARY) {
        ws->end(1003, "binary messages are not supported");
        return;
    }
    Op op;
    std::string err;
    if (!parseOp(msg, op, err)) {
        ws->send(err, uWS::OpCode::TEXT);
        return;
    }
    if (op.op == "subscribe") {
        size_t have = topicCount(ws), add = 0;
        for (auto &t : op.topics) add += !ws->isSubscribed(t);
        if (have + add > kMaxTopics) {
            ws->send(errorReply("too_many_topics", "at most 1000 topics per connection"), uWS::OpCode::TEXT);
            return;
        }
        for (auto &t : op.topics) ws->subscribe(t);
    } else {
        for (auto &t : op.topics) ws->unsubscribe(t);
    }
    // send drains this client's queued deliveries first: the ack stays in order.
    ws->send(ackReply(op.op == "subscribe" ? "subscribed" : "unsubscribed", op.topics), uWS::OpCode::TEXT);
}

// ---- the control API ----

using Res = uWS::HttpResponse<false>;

struct Request {
    Res *res;
    std::string body;
    std::string topic; // empty: batch
    bool batch = false;
    bool done = false; // aborted or answered
};

void respond(Res *res, const char *status, std::string_view contentType, std::string_view body, bool close = false) {
    res->writeStatus(status);
    res->writeHeader("Content-Type", contentType);
    res->writeHeader("X-Content-Type-Options", "nosniff");
    res->end(body, close);
}

std::string errorBody(std::string_view code, std::string_view msg) {
    std::string o = "{\"error\":";
    appendQuoted(o, code);
    o += ",\"message\":";
    appendQuoted(o, msg);
    return o + "}\n";
}

void respondError(Res *res, const char *status, std::string_view code, std::string_view msg, bool close = false) {
    respond(res, status, "application/json", errorBody(code, msg), close);
}

std::string invalidTopicText(std::string t) {
    if (t.size() > 40) t = t.substr(0, 40) + "...";
    return "invalid topic " + goQuote(t) + ": want 1-128 characters of [A-Za-z0-9_.:-]";
}

void appendResult(std::string &o, std::string_view topic, Published p) {
    o += "{\"topic\":\"", o += topic, o += "\",\"seq\":", o += std::to_string(p.seq);
    o += ",\"subscribers\":", o += std::to_string(p.subscribers), o += '}';
}

struct Line {
    std::string topic;
    std::string_view data;
};

// publishLines publishes checked lines in order and answers.
void publishLines(Res *res, bool batch, std::vector<Line> &lines) {
    std::vector<Frame> frames;
    std::string out;
    if (!batch) {
        appendResult(out, lines[0].topic, publish(lines[0].topic, lines[0].data, frames));
    } else {
        out = "{\"published\":" + std::to_string(lines.size()) + ",\"results\":[";
        for (size_t i = 0; i < lines.size(); i++) {
            if (i) out += ',';
            appendResult(out, lines[i].topic, publish(lines[i].topic, lines[i].data, frames));
        }
        out += "]}";
    }
    out += "\n";
    handOff(std::move(frames));
    respond(res, "200 OK", "application/json", out);
}

std::string batchError(std::string_view code, std::string_view msg, int line) {
    std::string o = "{\"error\":";
    appendQuoted(o, code);
    o += ",\"message\":";
    appendQuoted(o, "line " + std::to_string(line) + ": " + std::string(msg));
    return o + ",\"line\":" + std::to_string(line) + ",\"published\":0}\n";
}

// finish checks a complete body on the HTTP loop and hands it on. A bad
// batch line refuses the whole batch (published 0): the checks all run
// before anything is published, a stricter form of fanwire's resumable batch.
void finish(std::shared_ptr<Request> req) {
    std::vector<Line> lines;
    Res *res = req->res;
    if (!req->batch) {
        std::string_view data = trimJSONSpace(req->body);
        if (data.empty()) return respondError(res, "400 Bad Request", "empty_body", "the body must be one JSON value");
        if (!validUTF8(data)) return respondError(res, "400 Bad Request", "bad_json", "the body is not valid UTF-8");
        if (!oneValue(data)) return respondError(res, "400 Bad Request", "bad_json", "the body is not one valid JSON value");
        lines.push_back({req->topic, data});
    } else {
        std::string_view rest = req->body;
        int lineNo = 0;
        while (!rest.empty()) {
            size_t nl = rest.find('\n');
            std::string_view line = trimJSONSpace(rest.substr(0, nl));
            rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
            lineNo++;
            if (line.empty()) continue;
            auto bad = [&](std::string_view code, std::string_view msg) {
                respond(res, "400 Bad Request", "application/json", batchError(code, msg, lineNo));
            };
            if (!validUTF8(line)) return bad("bad_json", "is not valid UTF-8");
            if (!oneValue(line)) return bad("bad_json", "is not one valid JSON value");
            Line l;
            bool hasTopic = false, hasData = false, topicString = true;
            bool ok = object(line, [&](const std::string &key, JSON &j) {
                if (key == "topic") {
                    if (j.peek('n')) { hasTopic = false; return j.lit("null"); }
                    hasTopic = true;
                    l.topic.clear();
                    if (!j.peek('"')) { topicString = false; return j.value(); }
                    return j.str(&l.topic);
                }
                if (key == "data") {
                    j.ws();
                    const char *start = j.p;
                    if (!j.value()) return false;
                    l.data = std::string_view(start, (size_t) (j.p - start));
                    hasData = true;
                    return true;
                }
                return j.value();
            });
            if (!ok || !topicString) return bad("bad_json", "want an object {\"topic\":\"...\",\"data\":<JSON value>}");
            if (!hasTopic) return bad("missing_topic", "\"topic\" is missing");
            if (!validTopic(l.topic)) return bad("invalid_topic", invalidTopicText(l.topic));
            if (!hasData) return bad("missing_data", "\"data\" is missing");
            lines.push_back(std::move(l));
        }
        if (lines.empty()) return respondError(res, "400 Bad Request", "empty_body", "the body must hold NDJSON lines {\"topic\":\"...\",\"data\":<JSON value>}");
    }
    req->done = true;
    publishLines(res, req->batch, lines);
}

void readPublish(Res *res, uWS::HttpRequest *req, bool batch) {
    auto r = std::make_shared<Request>();
    r->res = res;
    r->batch = batch;
    if (!batch) {
        std::string topic;
        if (!percentDecode(req->getUrl().substr(strlen("/publish/")), topic, false) || !validTopic(topic)) {
            respondError(res, "400 Bad Request", "invalid_topic", invalidTopicText(topic));
            return;
        }
        r->topic = std::move(topic);
    }
    std::string_view cl = req->getHeader("content-length");
    if (!cl.empty() && strtoull(std::string(cl).c_str(), nullptr, 10) > kMaxBody) {
        respondError(res, "413 Payload Too Large", "body_too_large", "the body is larger than the limit of 1048576 bytes", true);
        return;
    }
    res->onAborted([r] { r->done = true; });
    res->onData([r](std::string_view chunk, bool last) {
        if (r->done) return;
        if (r->body.size() + chunk.size() > kMaxBody) {
            r->done = true;
            respondError(r->res, "413 Payload Too Large", "body_too_large", "the body is larger than the limit of 1048576 bytes", true);
            return;
        }
        r->body.append(chunk);
        if (last) finish(r);
    });
}

void methodNotAllowed(Res *res, uWS::HttpRequest *req, const char *allow) {
    res->writeStatus("405 Method Not Allowed");
    res->writeHeader("Allow", allow);
    std::string method(req->getCaseSensitiveMethod());
    respondError(res, "405 Method Not Allowed", "method_not_allowed",
                 method + " is not allowed on " + std::string(req->getUrl()) + "; use " + allow);
}

void controlRoutes(uWS::App &app) {
    app.post("/publish", [](Res *res, uWS::HttpRequest *req) { readPublish(res, req, true); });
    app.post("/publish/*", [](Res *res, uWS::HttpRequest *req) { readPublish(res, req, false); });
    app.get("/healthz", [](Res *res, uWS::HttpRequest *) { respond(res, "200 OK", "text/plain; charset=utf-8", "ok\n"); });
    app.any("/*", [](Res *res, uWS::HttpRequest *req) {
        std::string_view url = req->getUrl();
        if (url == "/publish" || url.rfind("/publish/", 0) == 0) return methodNotAllowed(res, req, "POST");
        if (url == "/healthz") return methodNotAllowed(res, req, "GET, HEAD");
        // No /debug/heap: there is no Go heap here (the harness then shows '–').
        respondError(res, "404 Not Found", "not_found", "no such endpoint: " + std::string(url));
    });
}

void listenOrDie(uWS::App &app, const std::string &host, int port, us_listen_socket_t **out) {
    app.listen(host, port, [&](us_listen_socket_t *ls) {
        if (!ls) fatal("cannot listen on " + host + ":" + std::to_string(port));
        *out = ls;
    });
}

} // namespace

int main(int argc, char **argv) {
    Flags f = parseFlags(argc, argv);
    publishThread = f.publishThread;

    // SIGTERM/SIGINT go to one waiting thread, never into a loop.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);

    // Pings: uWS closes after idleTimeout seconds of silence and pings
    // before that; fanwire's peers close after 2 silent ping intervals.
    // Above uWS's limit of 960 s (the bench passes 10m), both are off.
    unsigned idle = 0;
    if (f.pingSeconds > 0 && 2 * f.pingSeconds <= 960) idle = (unsigned) std::max(8.0, 2 * f.pingSeconds);

    uWS::App ws;
    wsApp = &ws;
    wsLoop = uWS::Loop::get();
    ws.ws<PerSocketData>("/ws", {
        .compression = uWS::DISABLED,
        .maxPayloadLength = kMaxMessage,
        .idleTimeout = (unsigned short) idle,
        .maxBackpressure = kMaxPending,
        .closeOnBackpressureLimit = true,
        .resetIdleTimeoutOnSend = false,
        .sendPingsAutomatically = idle != 0,
        .upgrade = [](auto *res, auto *req, auto *context) {
            std::vector<std::string> topics;
            std::string err;
            if (!urlTopics(req->getQuery(), topics, err)) {
                res->writeStatus("400 Bad Request");
                res->writeHeader("Content-Type", "text/plain; charset=utf-8");
                res->writeHeader("X-Content-Type-Options", "nosniff");
                res->end(err + "\n");
                return;
            }
            openTopics = std::move(topics);
            // open runs inside upgrade, before the loop can run a publish:
            // URL topics are in effect before the client can see the 101.
            res->template upgrade<PerSocketData>({}, req->getHeader("sec-websocket-key"), req->getHeader("sec-websocket-protocol"),
                                                 req->getHeader("sec-websocket-extensions"), context);
            openTopics.clear();
        },
        .open = [](auto *ws) {
            for (auto &t : openTopics) ws->subscribe(t);
            openTopics.clear();
        },
        .message = [](auto *ws, std::string_view msg, uWS::OpCode code) { onMessage(ws, msg, code); },
        .subscription = [](auto *, std::string_view topic, int now, int) {
            if (publishThread) onSubscription(topic, now);
        },
    });
    ws.any("/*", [](Res *res, uWS::HttpRequest *) {
        res->writeStatus("404 Not Found");
        res->writeHeader("Content-Type", "text/plain; charset=utf-8");
        res->end("not found: WebSocket endpoint is /ws\n");
    });
    us_listen_socket_t *wsListen = nullptr;
    listenOrDie(ws, f.listenHost, f.listenPort, &wsListen);

    std::atomic<uWS::Loop *> httpLoop{nullptr};
    std::atomic<uWS::App *> httpAppPtr{nullptr};
    std::thread httpThread;
    std::unique_ptr<uWS::App> sameLoopHTTP;
    if (f.publishThread) {
        std::atomic<bool> ready{false};
        httpThread = std::thread([&] {
            uWS::App app;
            controlRoutes(app);
            us_listen_socket_t *ls = nullptr;
            listenOrDie(app, f.httpHost, f.httpPort, &ls);
            httpAppPtr = &app;
            httpLoop = uWS::Loop::get();
            ready = true;
            app.run();
        });
        while (!ready) std::this_thread::yield();
    } else {
        sameLoopHTTP = std::make_unique<uWS::App>();
        controlRoutes(*sameLoopHTTP);
        us_listen_socket_t *ls = nullptr;
        listenOrDie(*sameLoopHTTP, f.httpHost, f.httpPort, &ls);
        httpAppPtr = sameLoopHTTP.get();
        httpLoop = wsLoop;
    }

    std::thread([&, loop = httpLoop.load(), httpApp = httpAppPtr.load()] {
        int sig;
        sigwait(&sigs, &sig);
        // Close every listener and socket; the loops then end by themselves.
        wsLoop->defer([&] { wsApp->close(); });
        loop->defer([httpApp] { httpApp->close(); });
        sleep(2);
        _exit(0); // backstop
    }).detach();

    ws.run();
    if (httpThread.joinable()) httpThread.join();
    return 0;
}
