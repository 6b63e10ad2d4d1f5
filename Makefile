# The two commands a newcomer needs: `make demo` and `make test`.
# Everything the project needs is installed from here: Debian packages via apt,
# Python packages into .venv from pyproject.toml.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DATA ?= demo-data
# Debian packages the project needs on a fresh machine: python3-venv (Debian's
# python3 cannot make a virtualenv without it), systemd (`systemd-analyze verify`
# checks the unit files), postfix (its smtp-sink is the MTA tests' receiving
# server, and Postfix itself the benchmark's reference; installed unconfigured),
# chromium (the browser tests drive it through Playwright), fonts-noto-cjk (Japanese
# in screenshots and PDFs instead of empty boxes), fonts-ipaexfont-gothic (the registration
# sheets' font: TrueType, which reportlab embeds; Noto CJK's CFF outlines it cannot), wrk
# (bench/guardian_burst.py's load generator).
DEBIAN_PACKAGES := python3-venv systemd postfix chromium fonts-noto-cjk fonts-ipaexfont-gothic wrk

.PHONY: demo demo-setup test lint unit integration bench screenshots catalog catalog-update system-deps clean

demo: demo-setup
	$(BIN)/appliance --data-dir $(DEMO_DATA) serve

# The demo's set-up path on its own (the integration tier runs it in a temporary dir).
demo-setup: $(VENV)/.installed catalog
	$(BIN)/appliance --data-dir $(DEMO_DATA) init
	test -f $(DEMO_DATA)/keys/dkim-renraku.pem || $(BIN)/appliance --data-dir $(DEMO_DATA) dkim init
	$(BIN)/appliance --data-dir $(DEMO_DATA) push init
	$(BIN)/appliance --data-dir $(DEMO_DATA) demo

test: lint catalog
	$(BIN)/pytest tests

lint: $(VENV)/.installed
	$(BIN)/ruff check appliance webui mta tests bench

unit: $(VENV)/.installed catalog
	$(BIN)/pytest tests -m "not integration"

integration: $(VENV)/.installed catalog
	$(BIN)/pytest tests -m integration

bench: $(VENV)/.installed
	for script in bench/[!_]*.py; do $(BIN)/python $$script || exit 1; done

# The README's screenshots: the browser tests at one pixel per CSS pixel (small PNGs), then
# a chosen few of test-artifacts/screenshots/ copied as docs/screenshots/<name>.png (commit them).
SHOTS := \
	test_school_admin_sends_a_survey_with_a_pdf_and_watches_it_delivered-sign-in-phone:sign-in \
	test_staff_sign_in_find_their_way_switch_language_and_sign_out-school-phone:school \
	test_school_admin_sends_a_survey_with_a_pdf_and_watches_it_delivered-compose-phone:compose \
	test_school_admin_sends_a_survey_with_a_pdf_and_watches_it_delivered-review-phone:review \
	test_school_admin_sends_a_survey_with_a_pdf_and_watches_it_delivered-followup-desktop:followup \
	test_school_admin_approves_a_pending_registration-roster-phone:roster \
	test_school_admin_approves_a_pending_registration-registrations-phone:registrations \
	test_coconet_roll_call_on_a_phone_reaches_the_guardians_page-roll-call-phone:coconet-roll-call \
	test_coconet_roll_call_on_a_phone_reaches_the_guardians_page-guardian-phone:coconet-guardian

screenshots: $(VENV)/.installed catalog
	SCREENSHOT_SCALE=css $(BIN)/pytest -q tests/integration/test_browser_*.py
	mkdir -p docs/screenshots
	for shot in $(SHOTS); do cp test-artifacts/screenshots/$${shot%%:*}.png docs/screenshots/$${shot#*:}.png || exit 1; done

# The UI's translation catalog: webui/translations/<lang>/LC_MESSAGES/messages.po is
# the source (kept in git); the compiled .mo beside it is built here.
CATALOGS := $(wildcard webui/translations/*/LC_MESSAGES/messages.po)
catalog: $(CATALOGS:.po=.mo)

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@ --statistics

# After adding or changing UI strings: extract them and merge them into every catalog,
# then translate the new entries (a unit test fails while any is untranslated).
catalog-update: $(VENV)/.installed
	$(BIN)/pybabel extract -F webui/babel.cfg -k _l --no-location --sort-output -o webui/translations/messages.pot webui
	$(BIN)/pybabel update -i webui/translations/messages.pot -d webui/translations --no-fuzzy-matching --ignore-obsolete

$(VENV)/.installed: pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

system-deps:
	@missing=""; for pkg in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

clean:
	rm -rf $(VENV) $(DEMO_DATA) .pytest_cache
