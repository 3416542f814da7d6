# The web book. Included by the top-level Makefile, which defines VENV, PY and VENV_STAMP.
# tools/editions.py stages and builds each edition (its docstring says what each one shows):
#   make book             reader edition, for people reading alone (solutions folded), into _build/html
#   make book-class       class edition, for a graded course (no solutions), into _build/class/html
#   make book-instructor  instructor edition (solutions, hidden tests), into _build/instructor/html
#   make book-assets      MathJax, RequireJS, the widget manager (and axe-core for the tests) from npm
#   make book-live        the live model of the pages (book/live/ and its weights) into book/_static/live
#   make book-clean       remove the built books and their execution cache
#   make serve            build the reader edition and serve it on http://localhost:8000

BOOK_STATIC := book/_static
BOOK_ASSETS_STAMP := $(BOOK_STATIC)/.installed
BOOK_NPM := book/node_modules
HTML_MANAGER := $(BOOK_NPM)/@jupyter-widgets/html-manager

.PHONY: book book-class book-instructor book-assets book-live book-clean serve

# The reader edition over http on this machine: the live model's modules do not load from file://.
serve: book
	$(PY) -m http.server --bind 127.0.0.1 --directory _build/html 8000

book-assets: $(BOOK_ASSETS_STAMP)

# Pages load these from _static/, never from a CDN (see _config.yml). embed-amd.js loads its fonts
# from beside itself, once book/widgets-setup.js has told RequireJS where that is.
$(BOOK_ASSETS_STAMP): book/package.json book/package-lock.json book/widgets-setup.js
	cd book && npm ci --ignore-scripts --no-audit --no-fund
	rm -rf $(BOOK_STATIC)
	mkdir -p $(BOOK_STATIC)/requirejs $(BOOK_STATIC)/html-manager
	cp -R $(BOOK_NPM)/mathjax/es5 $(BOOK_STATIC)/mathjax
	cp $(BOOK_NPM)/mathjax/LICENSE $(BOOK_STATIC)/mathjax/
	cp $(BOOK_NPM)/requirejs/require.js $(BOOK_STATIC)/requirejs/
	cp $(HTML_MANAGER)/dist/embed-amd.js $(HTML_MANAGER)/dist/*.woff2 $(HTML_MANAGER)/dist/*.woff \
	   $(HTML_MANAGER)/dist/*.ttf $(HTML_MANAGER)/dist/*.eot $(HTML_MANAGER)/dist/*.svg \
	   $(BOOK_STATIC)/html-manager/
	cp book/widgets-setup.js $(BOOK_STATIC)/html-manager/setup.js
	touch $@

# The live model (book/live/live.js): its modules, and the shipped model's weights exported from
# lib/models/ (never committed twice). Rebuilt after book-assets, which empties book/_static.
LIVE_DIR := $(BOOK_STATIC)/live
LIVE_STAMP := $(LIVE_DIR)/.built
LIVE_SOURCES := $(wildcard book/live/*.js book/live/*.css)
LIVE_MODEL := $(wildcard lib/models/shakespeare/*.json lib/models/shakespeare/*.safetensors)

book-live: $(LIVE_STAMP)

$(LIVE_STAMP): $(BOOK_ASSETS_STAMP) $(VENV_STAMP) tools/export_live_model.py lib/checkpoint.py $(LIVE_MODEL) $(LIVE_SOURCES)
	rm -rf $(LIVE_DIR)
	$(PY) tools/export_live_model.py $(LIVE_DIR) shakespeare
	cp $(LIVE_SOURCES) $(LIVE_DIR)/
	touch $@

book: $(VENV_STAMP) $(BOOK_ASSETS_STAMP) $(LIVE_STAMP)
	@$(MAKE) --no-print-directory book-edition EDITION=reader

book-class: $(VENV_STAMP) $(BOOK_ASSETS_STAMP) $(LIVE_STAMP)
	@$(MAKE) --no-print-directory book-edition EDITION=class

book-instructor: $(VENV_STAMP) $(BOOK_ASSETS_STAMP) $(LIVE_STAMP)
	@$(MAKE) --no-print-directory book-edition EDITION=instructor

.PHONY: book-edition
book-edition:
	@start=$$(date +%s); \
	$(PY) tools/editions.py $(EDITION) || exit 1; \
	echo "The $(EDITION) edition built in $$(( $$(date +%s) - start )) s."

book-clean:
	rm -rf _build/html _build/.doctrees _build/.jupyter_cache _build/jupyter_execute \
	       _build/class _build/instructor _build/*-src _build/screenshots
