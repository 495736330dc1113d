"""Writes streams shaped apart from the benchmark's corpora, to measure the
decoders on text they were not tuned on:

    python3 benches/scripts/other_streams.py DIR [MIB]
    SSE_BENCH_FILES=$(ls -d DIR/* | paste -sd,) \
        cargo run --release -p sse-benches --example interleaved -- 5 decode

Seventeen streams of MIB MiB each (default 4), the same on every run: OpenAI's
and Anthropic's streams with their real field sets and tokens in several
scripts; log tails of 10 to 40 `data:` lines an event; news articles as
one-line JSON in Hindi, Arabic and Thai; random text from every Unicode
plane, 1 to 4 lines an event; large one-line JSON with CRLF endings, a type
and a 32-digit id; heartbeat comments between small events; accented
European text over 2 to 8 lines; a Mercure hub's updates (JSON-LD with a
UUID URN id); pretty-printed JSON, one `data:` line per line; lone CR line
endings; events of one line of about 800 KB (half a million characters of
Latin, then Thai text); empty keep-alive comments between small events;
blocks with only an id or a retry among small events; 8 to 30 lines an
event, each in a script of its own.
"""
import json
import os
import random
import sys

random.seed(7)
DIR = sys.argv[1]
T = (int(sys.argv[2]) if len(sys.argv) > 2 else 4) << 20
os.makedirs(DIR, exist_ok=True)
words = {
 'hindi': "नमस्ते दुनिया सर्वर भेजे गए घटनाएं ब्राउज़र कनेक्शन डेटा पाठ धारा मानक समाचार".split(),
 'arabic': "مرحبا بالعالم الخادم أحداث المتصفح اتصال البيانات نص تدفق معيار أخبار".split(),
 'thai': "สวัสดี โลก เซิร์ฟเวอร์ เหตุการณ์ เบราว์เซอร์ การเชื่อมต่อ ข้อมูล ข้อความ".split(),
 'latin': "straße café naïve résumé über Größe façade jalapeño smörgåsbord Ærø".split(),
 'ascii': "the quick brown fox jumps over lazy dog server sent events stream data".split(),
}
def prose(lang, n): return ' '.join(random.choice(words[lang]) for _ in range(n))
def out(name, gen):
    b = bytearray()
    i = 0
    while len(b) < T:
        b += gen(i).encode(); i += 1
    open(os.path.join(DIR, name), 'wb').write(b)

# OpenAI-style stream with real fields, mixed languages
def openai(i):
    lang = random.choice(list(words))
    tok = prose(lang, random.randint(1, 2))
    d = {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{"content":tok},"logprobs":None,"finish_reason":None}]}
    return "data: " + json.dumps(d, ensure_ascii=False, separators=(',',':')) + "\n\n"
out('openai', openai)

# Anthropic-style: typed events, pings
def anthropic(i):
    if i % 50 == 0: return "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    lang = random.choice(list(words))
    d = {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":prose(lang, random.randint(1,3))}}
    return "event: content_block_delta\ndata: " + json.dumps(d, ensure_ascii=False) + "\n\n"
out('anthropic', anthropic)

# Log tail: many short data lines per event
def logtail(i):
    lines = [f"2026-12-07T10:{i%60:02d}:{random.randint(0,59):02d}.{random.randint(0,999):03d}Z INFO worker-{random.randint(1,16)} " + prose('ascii', random.randint(4,14)) for _ in range(random.randint(10,40))]
    return f"id: {i}\n" + ''.join("data: " + l + "\n" for l in lines) + "\n"
out('logtail', logtail)

# Long single-line JSON in Hindi / Arabic / Thai (3-byte / 2-byte / 3-byte)
for lang in ['hindi', 'arabic', 'thai']:
    def g(i, lang=lang):
        d = {"id": i, "title": prose(lang, 6), "body": prose(lang, random.randint(50, 600)), "tags": [prose(lang,1) for _ in range(4)]}
        return f"event: article\nid: {i}\ndata: " + json.dumps(d, ensure_ascii=False) + "\n\n"
    out(f'news-{lang}', g)

# Random Unicode across planes, lines of random length, some multi-line
def rnd(i):
    def ch():
        r = random.random()
        if r < 0.5: return chr(random.randint(0x20, 0x7e))
        if r < 0.7: return chr(random.randint(0xa0, 0x7ff))
        if r < 0.9:
            c = random.randint(0x800, 0xfffd)
            return chr(c) if not (0xd800 <= c < 0xe000) else 'x'
        return chr(random.randint(0x10000, 0x10ffff))
    lines = [''.join(ch() for _ in range(random.randint(1, 400))) for _ in range(random.randint(1, 4))]
    return ''.join("data: " + l + "\n" for l in lines) + "\n"
out('random-unicode', rnd)

# GitHub-like: big single-line ASCII JSON 2-16 KB with uuid ids and CRLF
def gh(i):
    body = json.dumps({"action":"push","ref":"refs/heads/main","commits":[{"id":"%040x"%random.getrandbits(160),"message":prose('ascii', random.randint(5,30)),"author":{"name":"dev","email":"dev@example.com"}} for _ in range(random.randint(5, 60))]})
    return f"event: push\r\nid: {random.getrandbits(128):032x}\r\ndata: {body}\r\n\r\n"
out('github-crlf', gh)

# Heartbeat-heavy: comments between small events
def hb(i):
    if i % 3: return ": keep-alive\n\n"
    return f"event: update\ndata: {{\"v\":{i},\"s\":\"{prose('latin', 2)}\"}}\n\n"
out('heartbeats', hb)

# Latin-1 heavy multi-line (European news over several lines)
def eu(i):
    return f"id: {i}\n" + ''.join("data: " + prose('latin', random.randint(10, 80)) + "\n" for _ in range(random.randint(2,8))) + "\n"
out('latin-multiline', eu)

# A Mercure hub: JSON-LD updates, each with a version 4 UUID as a URN id
def mercure(i):
    u = "%032x" % random.getrandbits(128)
    urn = f"urn:uuid:{u[:8]}-{u[8:12]}-4{u[13:16]}-a{u[17:20]}-{u[20:]}"
    d = {"@id": f"https://example.com/books/{i}", "@type": "Book", "title": prose('latin', random.randint(2, 6)), "price": random.randint(1, 99)}
    return f"id: {urn}\ndata: " + json.dumps(d, ensure_ascii=False) + "\n\n"
out('mercure', mercure)

# Pretty-printed JSON, one data: line per line of the document
def pretty(i):
    d = {"id": i, "user": {"name": prose(random.choice(['latin', 'ascii', 'arabic']), 2), "roles": ["admin", "editor"][:random.randint(1, 2)]}, "items": [{"sku": f"A-{random.randint(1, 9999)}", "qty": random.randint(1, 5)} for _ in range(random.randint(1, 4))]}
    return "event: order\n" + ''.join("data: " + l + "\n" for l in json.dumps(d, ensure_ascii=False, indent=2).split("\n")) + "\n"
out('pretty-json', pretty)

# Lone CR line endings (the spec's third kind), small typed events with ids
def cr_only(i):
    return f"event: update\rid: {i}\rdata: " + prose(random.choice(list(words)), random.randint(3, 30)) + "\r\r"
out('cr-only', cr_only)

# Events of one line of about 800 KB (half a million characters of
# accented Latin, then Thai text): owned, each is an allocation of its own
mib_text = prose('latin', 60000) + prose('thai', 30000)
def mib_line(i):
    start = random.randint(0, 1000)
    return "data: " + mib_text[start:start + (1 << 20) // 2] + "\n\n"
out('huge-lines', mib_line)

# Empty keep-alive comments between small events, as proxies are sent
def keepalive(i):
    return ":\n" * random.randint(0, 3) + "data: " + prose(random.choice(list(words)), random.randint(2, 12)) + "\n\n"
out('keepalive', keepalive)

# Blocks that dispatch nothing (an id or a retry alone) among small events
def meta(i):
    k = random.randint(0, 3)
    if k == 0: return f"id: {random.getrandbits(40)}\n\n"
    if k == 1: return f"retry: {random.randint(100, 5000)}\n\n"
    return "data: " + prose('ascii', random.randint(1, 6)) + "\n\n"
out('mixed-meta', meta)

# 8 to 30 data lines of 80 to 200 bytes an event, each line in a script of its own
def multi_line_intl(i):
    return ''.join("data: " + prose(random.choice(list(words)), random.randint(8, 20)) + "\n" for _ in range(random.randint(8, 30))) + "\n"
out('multi-line-intl', multi_line_intl)
