"""Newcomer smoke test against a running portal: wait for it, then log in as a demo persona.

    python .ci/smoke_login.py --base http://127.0.0.1:8000 --user sponsor_a --password demo
        [--timeout 240] [--watch-pid PID]

Waits until ``/api/schema/`` answers 200 (giving up early if the process --watch-pid names has
ended), then logs in through the session form at ``/accounts/login/`` (GET for the CSRF token and
cookie, POST the credentials, expect a redirect) and checks that ``/`` answers 200 with that
session. Standard library only; exits non-zero with a message on the first failure.
"""

import argparse
import http.cookiejar
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # hand the 3xx response back instead of following it


def _fail(message: str) -> None:
    print(f"smoke: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def _status(opener: urllib.request.OpenerDirector, request) -> tuple[int, str, bytes]:
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.geturl(), response.read()
    except urllib.error.HTTPError as error:  # 3xx (redirects not followed), 4xx, 5xx
        return error.code, error.headers.get("Location", ""), error.read()


def _alive(pid: int | None) -> bool:
    """The watched process still runs (a zombie, ended but not yet reaped, does not)."""
    if pid is None:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_for_schema(base: str, timeout: float, watch_pid: int | None) -> None:
    opener = urllib.request.build_opener()
    url = f"{base}/api/schema/"
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < timeout:
        if not _alive(watch_pid):
            _fail(f"the portal process {watch_pid} ended before {url} answered ({last})")
        try:
            status, _, _ = _status(opener, url)
        except OSError as error:  # refused while the server starts
            last = str(error)
        else:
            if status == 200:
                print(f"smoke: {url} answered 200 after {time.monotonic() - started:.0f}s")
                return
            last = f"HTTP {status}"
        time.sleep(1)
    _fail(f"{url} did not answer 200 within {timeout:.0f}s (last: {last})")


def log_in(base: str, username: str, password: str) -> None:
    cookies = http.cookiejar.CookieJar()
    cookie_handler = urllib.request.HTTPCookieProcessor(cookies)
    following = urllib.request.build_opener(cookie_handler)
    not_following = urllib.request.build_opener(cookie_handler, _NoRedirect)
    login_url = f"{base}/accounts/login/"

    status, _, body = _status(following, login_url)
    if status != 200:
        _fail(f"GET {login_url} answered {status}")
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    if not match:
        _fail(f"GET {login_url}: no csrfmiddlewaretoken in the form")
    form = urllib.parse.urlencode(
        {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": match.group(1).decode(),
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is the --base we were given
        login_url, data=form, headers={"Referer": login_url}
    )
    status, location, _ = _status(not_following, request)
    if status not in (301, 302, 303):
        _fail(f"POST {login_url} as {username} answered {status}, not a redirect")
    if not any(cookie.name == "sessionid" for cookie in cookies):
        _fail(f"POST {login_url} as {username} set no session cookie")
    print(f"smoke: logged in as {username} (redirected to {location})")

    status, final_url, _ = _status(following, f"{base}/")
    if status != 200:
        _fail(f"GET / with {username}'s session answered {status}")
    if urllib.parse.urlsplit(final_url).path.startswith("/accounts/login"):
        _fail(f"GET / with {username}'s session was sent back to the log-in page")
    print(f"smoke: GET / as {username} answered 200 ({final_url})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="sponsor_a")
    parser.add_argument("--password", default="demo")
    parser.add_argument("--timeout", type=float, default=240)
    parser.add_argument("--watch-pid", type=int)
    args = parser.parse_args()
    base = args.base.rstrip("/")
    wait_for_schema(base, args.timeout, args.watch_pid)
    log_in(base, args.user, args.password)


if __name__ == "__main__":
    main()
