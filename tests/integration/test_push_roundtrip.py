"""A real Web Push round trip: `appliance push run` against a push service on loopback that decrypts what it gets.

The test plays the browser and the push service: it makes the subscription's key pair
and auth secret, registers two devices through the core, and serves their endpoints
on 127.0.0.1. The worker encrypts with pywebpush (RFC 8291) and signs with VAPID
(RFC 8292); the service decrypts each body with http_ece and the device's private key.
One endpoint answers 410 Gone, whose device must then be removed.
"""
import base64
import json
import os
import signal
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from appliance import db, push
from appliance.messages import create_message
from appliance.models import Delivery, DeliveryResult
from appliance.runtime import init_data_dir
from tests.conftest import TEST_OVERRIDES
from tests.integration.site import APPLIANCE, wait_until
from tests.unit.guardian_fixtures import make_families


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Device:
    """A browser's side of a subscription: its key pair and auth secret."""

    def __init__(self, endpoint: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def subscription(self) -> str:
        public = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)
        return json.dumps({"endpoint": self.endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}})


class PushService(ThreadingHTTPServer):
    """Keeps every request (path, headers, body); answers 410 for paths under /gone/, else 201."""

    def __init__(self):
        self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                self.received.append((handler.path, handler.headers, body))   # case-insensitive
                handler.send_response(410 if handler.path.startswith("/gone/") else 201)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def service():
    server = PushService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_push_round_trip_encrypted_with_ttl_urgency_vapid_and_410_removes_the_device(tmp_path, service):
    data_dir = tmp_path / "data"
    overrides = {**TEST_OVERRIDES, "push": {"endpoint_hosts": ["127.0.0.1"]}}
    app = init_data_dir(data_dir, environ={}, overrides=overrides)        # the system clock: the worker's
    env = dict(os.environ, APPLIANCE_DATA_DIR=str(data_dir), APPLIANCE_PUSH__ENDPOINT_HOSTS="127.0.0.1")
    subprocess.run([*APPLIANCE, "push", "init"], env=env, check=True, capture_output=True, timeout=60)
    families = make_families(app)
    base = f"http://127.0.0.1:{service.server_address[1]}"
    phone, old_tablet = Device(f"{base}/send/phone"), Device(f"{base}/gone/tablet")
    push.add_device(app, families.taro.id, phone.subscription(), "スマホ")
    push.add_device(app, families.taro.id, old_tablet.subscription(), "古いタブレット")
    message = create_message(app, families.school, audience="all", subject="大雨警報のため休校", body="本文",
                             priority="emergency", channels=["push"])
    db.close_database()

    worker = subprocess.Popen([*APPLIANCE, "push", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        wait_until(lambda: DeliveryResult.select().count() == 2, timeout=60, what="both push results")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.communicate(timeout=20)

    by_path = {path: (headers, body) for path, headers, body in service.received}
    headers, body = by_path["/send/phone"]
    assert 86000 < int(headers["TTL"]) <= 86400 and headers["Urgency"] == "high"     # a day: no expiry was set
    assert headers["Content-Encoding"] == "aes128gcm"
    payload = json.loads(http_ece.decrypt(body, private_key=phone.key, auth_secret=phone.auth, version="aes128gcm"))
    assert payload["title"] == "さくら小学校" and payload["body"] == "大雨警報のため休校"
    assert payload["emergency"] is True and payload["tag"] == message.id and "/r/" in payload["url"]
    scheme, _, params = headers["Authorization"].partition(" ")
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert scheme == "vapid" and fields["k"] == push.public_key(app)
    head, claims, signature = fields["t"].split(".")
    vapid_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
    raw = unb64url(signature)
    vapid_key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                     f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))      # raises if forged
    claims = json.loads(unb64url(claims))
    assert claims["aud"] == base and claims["sub"].startswith("mailto:")

    states = {d.contact.label: d.state for d in Delivery.select().where(Delivery.channel == "push")}
    assert states == {"スマホ": "delivered", "古いタブレット": "bounced"}
    assert [d.label for d in push.devices(app, families.taro.id)] == ["スマホ"]
