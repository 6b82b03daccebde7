#!/usr/bin/env python3
"""Browser tests of the web client chat-server serves, in headless Chromium.

Real parts only: the built chat-server and chat-cli binaries, the PostgreSQL of
$DATABASE_URL (scripts/test.sh starts one), Debian's chromium and chromedriver
driven by selenium, and an OpenAI-compatible provider on loopback that streams
its reply. Screenshots go to $WEB_ARTIFACTS (default .build/web-artifacts).

    BIN_DIR=$(swift build --show-bin-path) DATABASE_URL=postgres://… python3 Tests/web/test_web.py
"""

import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BIN_DIR = os.environ.get("BIN_DIR") or subprocess.run(
    ["swift", "build", "--show-bin-path"], capture_output=True, text=True, check=True).stdout.strip()
DATABASE_URL = os.environ["DATABASE_URL"]
ARTIFACTS = os.environ.get("WEB_ARTIFACTS", os.path.join(os.getcwd(), ".build", "web-artifacts"))
REPLY = ["Hello", " from", " the", " test", " provider."]


class Provider(http.server.BaseHTTPRequestHandler):
    """POST /v1/chat/completions: the reply streamed in chunks, 300 ms apart, then usage."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        model = body.get("model", "m")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def event(payload):
            self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self.wfile.flush()

        for piece in REPLY:
            event({"id": "c", "object": "chat.completion.chunk", "model": model,
                   "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            time.sleep(0.3)
        event({"id": "c", "object": "chat.completion.chunk", "model": model,
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        event({"id": "c", "object": "chat.completion.chunk", "model": model, "choices": [],
               "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}})
        self.wfile.write(b"data: [DONE]\n\n")


def start_provider():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def run(binary, *args, env=None):
    result = subprocess.run([os.path.join(BIN_DIR, binary), *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"{binary} {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result.stdout


def create_user():
    name = f"web-{uuid.uuid4().hex[:10]}"
    token = run("chat-server", "create-user", "--name", name, "--database-url", DATABASE_URL,
                "--log-level", "warning").strip().splitlines()[-1]
    return name, token


class Server:
    """A chat-server process on a free port of 127.0.0.1."""

    def __init__(self, provider_url, env=None):
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [os.path.join(BIN_DIR, "chat-server"), "serve", "--port", "0", "--database-url", DATABASE_URL,
             "--provider-url", provider_url, "--model", "test-model", "--log-level", "warning", "--prune-interval", "off"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env={**os.environ, **(env or {})})
        line = self.process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            self.stop()
            raise AssertionError(f"chat-server did not start: {line!r}; log {self.log.name}")
        self.url = match.group(1)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


class WebClientTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.provider, cls.provider_url = start_provider()
        cls.server = Server(cls.provider_url)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,820",
                         "--disable-gpu", "--lang=en-US"]:
            options.add_argument(argument)
        cls.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        cls.driver.set_script_timeout(20)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.server.stop()
        cls.provider.shutdown()

    def setUp(self):
        self.driver.get(self.server.url + "/")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(self.server.url + "/")

    def wait(self, condition, timeout=15):
        # Live updates re-render the page, so a handle found in one poll can be stale in the next.
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=[StaleElementReferenceException]).until(condition)

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(ARTIFACTS, f"{name}.png"))

    def sign_in(self, token):
        field = self.wait(EC.visibility_of_element_located((By.ID, "token")))
        field.send_keys(token + Keys.ENTER)
        self.wait(EC.visibility_of_element_located((By.ID, "app")))
        self.wait(EC.text_to_be_present_in_element((By.ID, "live-status"), "live"))

    def sidebar_titles(self):
        # Read in one script: the list re-renders on live updates, so element handles go stale.
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#session-list li button')].map(b => b.firstChild.textContent)")

    def test_wrong_token_is_refused(self):
        self.wait(EC.visibility_of_element_located((By.ID, "token"))).send_keys("cst_" + "0" * 64 + Keys.ENTER)
        error = self.wait(EC.visibility_of_element_located((By.ID, "signin-error")))
        self.assertIn("refused that token", error.text)
        self.assertFalse(self.driver.find_element(By.ID, "app").is_displayed())
        self.shot("01-wrong-token")

    def test_chat_rename_archive_and_live_changes_both_ways(self):
        name, token = create_user()
        self.sign_in(token)
        self.assertEqual(self.driver.find_element(By.ID, "whoami").text, name)
        self.assertEqual(self.driver.execute_script("return document.documentElement.dataset.theme"), "dark")

        self.driver.find_element(By.ID, "new-session").click()
        self.wait(EC.text_to_be_present_in_element((By.ID, "thread-title"), "New chat"))
        composer = self.driver.find_element(By.ID, "composer-input")
        self.assertEqual(self.driver.switch_to.active_element, composer, "the composer has the focus")
        composer.send_keys("Say hello", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "in five words")
        self.assertEqual(composer.get_attribute("value"), "Say hello\nin five words", "Shift+Enter is a new line")
        composer.send_keys(Keys.ENTER)
        self.shot("02a-sent")
        # The reply streams in: part of it shows with the typing indicator before it completes.
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".message.assistant .typing")
                  and "Hello" in d.find_element(By.CSS_SELECTOR, ".message.assistant .typing").text)
        self.shot("02-streaming")
        self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, ".typing"))
        self.wait(lambda d: "Hello from the test provider." in d.find_element(By.CSS_SELECTOR, ".message.assistant").text)
        self.assertIn("9 prompt + 5 completion tokens",
                      self.driver.execute_script("return document.querySelector('.message.assistant').innerText"))
        user_text = self.driver.execute_script("return document.querySelector('.message.user .text').innerText")
        self.assertEqual(user_text, "Say hello\nin five words")
        self.shot("03-reply")

        self.driver.find_element(By.ID, "rename").click()
        prompt = self.wait(EC.alert_is_present())
        prompt.send_keys("Trip plans")
        prompt.accept()
        self.wait(EC.text_to_be_present_in_element((By.ID, "thread-title"), "Trip plans"))
        self.wait(lambda d: "Trip plans" in self.sidebar_titles())

        # The browser's changes reach a laptop replica, and the laptop's reach the open page live.
        with tempfile.TemporaryDirectory() as directory:
            env = {"CHAT_STORE": os.path.join(directory, "laptop.sqlite")}
            run("chat-cli", "configure", "--server", self.server.url, "--token", token, env=env)
            run("chat-cli", "sync", env=env)
            listed = json.loads(run("chat-cli", "list", "--json", env=env))
            self.assertEqual([s["title"] for s in listed], ["Trip plans"])
            messages = json.loads(run("chat-cli", "show", listed[0]["id"], "--json", env=env))
            self.assertEqual([m["role"] for m in messages], ["user", "assistant"])

            laptop_session = run("chat-cli", "new", "Written on the laptop", env=env).strip()
            run("chat-cli", "send", laptop_session, "offline note", env=env)
            run("chat-cli", "sync", env=env)
            self.wait(lambda d: "Written on the laptop" in self.sidebar_titles())
            self.shot("04-live-from-laptop")

        # Archive: the session leaves the list of active ones.
        self.driver.find_element(By.ID, "archive").click()
        self.wait(lambda d: "Trip plans" not in self.sidebar_titles())
        self.assertEqual(self.sidebar_titles(), ["Written on the laptop"])

        # Light mode, and a narrow window still shows the list and the thread.
        self.driver.find_element(By.ID, "theme-toggle").click()
        self.assertEqual(self.driver.execute_script("return document.documentElement.dataset.theme"), "light")
        self.driver.execute_script("document.querySelector('#session-list li button').click()")
        self.wait(EC.text_to_be_present_in_element((By.ID, "thread-title"), "Written on the laptop"))
        self.shot("05-light")
        self.driver.set_window_size(420, 800)
        self.assertTrue(self.driver.find_element(By.ID, "session-list").is_displayed())
        self.assertTrue(self.driver.find_element(By.ID, "composer").is_displayed())
        self.shot("06-narrow")
        self.driver.set_window_size(1280, 820)
        self.driver.find_element(By.ID, "theme-toggle").click()

    def test_a_revoked_token_signs_out_and_another_user_sees_nothing(self):
        _, token = create_user()
        self.sign_in(token)
        self.driver.find_element(By.ID, "new-session").click()
        self.wait(lambda d: "New chat" in self.sidebar_titles())
        other_name, other_token = create_user()
        self.driver.find_element(By.ID, "signout").click()
        self.sign_in(other_token)
        self.assertEqual(self.sidebar_titles(), [], "another user's sessions never show")
        # Revoked while signed in: the next request answers 401 and the page asks to sign in again.
        subprocess.run(["psql", DATABASE_URL, "-X", "-q", "-c",
                        f"UPDATE api_tokens SET revoked_at = now() - interval '1 minute' "
                        f"WHERE user_id = (SELECT id FROM users WHERE name = '{other_name}')"], check=True)
        time.sleep(5.5)  # the server caches a good token lookup for 5 s
        self.driver.find_element(By.ID, "new-session").click()
        error = self.wait(EC.visibility_of_element_located((By.ID, "signin-error")))
        self.assertIn("sign in again", error.text)

    def test_payment_required_shows_the_top_up_offers(self):
        metered = Server(self.provider_url, env={
            "CHAT_METERING": "on", "CHAT_FACILITATOR_URL": "http://127.0.0.1:9",
            "CHAT_PAY_TO": "0x00000000000000000000000000000000000000B0", "CHAT_MIN_BALANCE_USD": "0.02",
            "CHAT_TOP_UP_USD": "5,20"})
        try:
            _, token = create_user()
            self.driver.get(metered.url + "/")
            self.driver.execute_script("sessionStorage.clear()")
            self.driver.get(metered.url + "/")
            self.sign_in(token)
            self.driver.find_element(By.ID, "new-session").click()
            self.wait(EC.text_to_be_present_in_element((By.ID, "thread-title"), "New chat"))
            self.driver.find_element(By.ID, "composer-input").send_keys("Hello?", Keys.ENTER)
            banner = self.wait(EC.visibility_of_element_located((By.ID, "thread-error")))
            self.assertIn("balance is too low", banner.text)
            self.assertIn("$5.00", banner.text)
            self.assertIn("$20.00", banner.text)
            self.assertEqual(self.driver.find_element(By.ID, "composer-input").get_attribute("value"), "Hello?",
                             "the unsent message is kept for another try")
            # The unsent message stays in the thread, marked, even after live updates re-render it.
            time.sleep(0.5)
            self.assertEqual(self.driver.execute_script(
                "return [...document.querySelectorAll('.message.user')].map(m => m.classList.contains('failed'))"), [True])
            self.shot("07-payment-required")
        finally:
            metered.stop()


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    print(f"web tests: screenshots in {ARTIFACTS}")
    sys.exit(0 if result.wasSuccessful() else 1)
