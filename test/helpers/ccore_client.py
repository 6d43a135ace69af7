#!/usr/bin/python3
"""gRPC C-core proxyless xDS client for the real-client tests (Debian python3-grpcio).

Run with /usr/bin/python3 (Debian's dist-packages). The xDS bootstrap comes from the
environment: GRPC_XDS_BOOTSTRAP_CONFIG (inline JSON) or GRPC_XDS_BOOTSTRAP (a file).

argv[1] is a JSON object:
  {"batches": [{"target": "xds:///greeter.oto.tools", "n": 400,
                "metadata": {"x-canary": "yes"}, "timeout": 5.0, "warmup": 10}]}
A batch with "duration" (seconds) calls continuously for that long instead of n calls.
Before each batch's counted calls a line {"event": "start", "batch": i} is printed.
Batches run in order on channels kept open per target. With "hold": true the process
stays alive (xDS stream open) after printing until stdin is closed. Prints one JSON line:
  {"results": [{"counts": {"b0": 300, "b1": 100}, "errors": {}, "ms": 123,
                "firstError": "..."}]}
No grpcio-tools: oxds.test.WhoRequest / WhoReply are encoded by hand (field 1, string).
"""
import json
import sys
import time

import grpc

METHOD = '/oxds.test.Echo/Who'


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_who_request(name):
    data = name.encode('utf-8')
    return b'\x0a' + _varint(len(data)) + data


def _read_varint(buf, i):
    shift = 0
    result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def decode_who_reply(buf):
    """Returns WhoReply.backend (field 1); skips unknown fields."""
    i = 0
    backend = ''
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _read_varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            ln, i = _read_varint(buf, i)
            if field == 1:
                backend = bytes(buf[i:i + ln]).decode('utf-8')
            i += ln
        else:
            raise ValueError('unsupported wire type %d' % wire)
    return backend


def main():
    spec = json.loads(sys.argv[1])
    channels = {}
    results = []
    try:
        for batch in spec['batches']:
            target = batch['target']
            if target not in channels:
                ch = grpc.insecure_channel(target)
                channels[target] = (ch, ch.unary_unary(METHOD))
            _, who = channels[target]
            timeout = float(batch.get('timeout', 5.0))
            metadata = tuple((k.lower(), v) for k, v in (batch.get('metadata') or {}).items())
            req = encode_who_request('x')
            counts = {}
            errors = {}
            first_error = None
            start = time.monotonic()
            for _ in range(int(batch.get('warmup', 0))):
                try:
                    who(req, timeout=timeout, metadata=metadata, wait_for_ready=True)
                except grpc.RpcError:
                    pass
            sys.stdout.write(json.dumps({'event': 'start', 'batch': len(results)}) + '\n')
            sys.stdout.flush()
            duration = batch.get('duration')
            until = time.monotonic() + float(duration) if duration is not None else None
            i = 0
            while (time.monotonic() < until) if until is not None else (i < int(batch.get('n', 1))):
                i += 1
                try:
                    reply = who(req, timeout=timeout, metadata=metadata)
                    b = decode_who_reply(reply)
                    counts[b] = counts.get(b, 0) + 1
                except grpc.RpcError as e:
                    name = e.code().name if e.code() is not None else 'UNKNOWN'
                    errors[name] = errors.get(name, 0) + 1
                    if first_error is None:
                        first_error = '%s: %s' % (name, e.details())
                    # Fast failures must not spin (a hot loop starves the C-core poller).
                    time.sleep(0.005)
            r = {'counts': counts, 'errors': errors, 'ms': int((time.monotonic() - start) * 1000)}
            if first_error is not None:
                r['firstError'] = first_error
            results.append(r)
        sys.stdout.write(json.dumps({'results': results}) + '\n')
        sys.stdout.flush()
        if spec.get('hold'):
            # Keep the xDS stream open (the parent inspects the server) until stdin closes.
            sys.stdin.read()
    finally:
        for ch, _ in channels.values():
            ch.close()

if __name__ == '__main__':
    main()
