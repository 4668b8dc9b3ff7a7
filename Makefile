# genmod - build the demos, run the tests, install the header.
#   make            every demo into build/<topic>  (e.g. build/autoencoder); make -j works.
#                   genmod's implementation, stb's with it, is compiled once into
#                   build/genmod.o, which every demo links: a demo compiles with
#                   -DGENMOD_NO_IMPLEMENTATION, so after editing only the demo its own file
#                   is all that compiles again. build/flags records the compiler and
#                   flags: changing CC or CFLAGS rebuilds the object and the demos.
#   make test       unit tests (plain, under ASan+UBSan, under valgrind), the fuzz corpora
#                   and a short fuzzing pass, the checkpoint crash test, C++/GM_STATIC/clang
#                   builds, a demo compiled in one line (the same numbers as build/), make
#                   install and uninstall with pkg-config (tests/install.sh), the demos
#                   misused, every demo with --quick; ends with "N passed, N failed"
#   make clean      remove build/ and out/
#   make install    genmod.h into $(PREFIX)/include and genmod.pc into $(PREFIX)/lib/pkgconfig
#                   (PREFIX=/usr/local; DESTDIR stages it), so `pkg-config --cflags --libs
#                   genmod` gives the flags; make uninstall removes those two files
#   make fuzz       each loader's libFuzzer target for FUZZ_SECONDS (180) with clang; make test
#                   replays their corpora and fuzzes each 30 s (tests/fuzz/run.sh)
#   make valgrind   the unit tests under valgrind memcheck: no errors, no leaks (make test
#                   runs it too when valgrind is installed)
#   make bench      genmod against PyTorch, side by side (bench/README.md; BENCH_QUICK=1: a smoke run)
#   make figures    every number and picture in lectures/, from the demos as they are now
#                   (lectures/figures/run.sh; RUNS="vae ..." for some runs only)
#   make gallery    every demo once, on one page with its pictures, results and command:
#                   out/index.html (tools/gallery.sh; about 20 min on 2 cores)
#   make gallery-check  that page in headless Chromium: screenshot out/gallery.png, fails on a
#                   missing or broken picture (tools/gallery-check.sh)
CC      ?= cc
CXX     ?= c++
PREFIX  ?= /usr/local
STB     := $(shell pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb)
WARN    := -Wall -Wextra -pedantic
CFLAGS  ?= -O2 -march=native -fno-math-errno
THREADS ?= -pthread
DEMO_CFLAGS = -std=c99 $(WARN) $(CFLAGS) $(THREADS) $(STB)
LDLIBS  := -lm
# make for tests/install.sh, under another name: a recipe that names $(MAKE) runs even under make -n
SUBMAKE := $(MAKE)

DEMO_SRC := $(sort $(wildcard demos/[0-9][0-9]_*.c))
# demos/02_autoencoder.c -> build/autoencoder (string functions, not a shell per demo: a
# make that has nothing to do takes 0.03 s instead of 0.45)
topic    = $(patsubst $(firstword $(subst _, ,$(notdir $(1))))_%.c,%,$(notdir $(1)))
DEMOS    := $(foreach f,$(DEMO_SRC),build/$(call topic,$(f)))

all: $(DEMOS)

define demo_rule
build/$(call topic,$(1)): $(1) genmod.h $(wildcard demos/*.h) build/genmod.o
	$$(CC) $$(DEMO_CFLAGS) -DGENMOD_NO_IMPLEMENTATION -o $$@ $$< build/genmod.o $$(LDLIBS)
endef
$(foreach f,$(DEMO_SRC),$(eval $(call demo_rule,$(f))))

build/genmod.o: genmod.h build/flags
	$(CC) $(DEMO_CFLAGS) -DGENMOD_IMPLEMENTATION -c -x c -o $@ genmod.h

# rewritten only when the compiler or the flags differ from the last build's
build/flags: FORCE | build
	@echo '$(CC) $(DEMO_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(DEMO_CFLAGS)' > $@
FORCE:

build:
	mkdir -p build

TEST_SRC := tests/main.c tests/test_ops.c tests/test_io.c tests/test_data.c tests/test_output.c tests/test_probability.c tests/test_gan.c tests/test_eval.c tests/test_diffusion.c tests/test_flows.c tests/test_made.c tests/test_tape.c tests/stb_impl.c
build/tests: $(TEST_SRC) tests/test.h tests/student_ops.h genmod.h | build
	$(CC) -std=c99 $(WARN) -O2 -g $(THREADS) $(STB) -o $@ $(TEST_SRC) $(LDLIBS)
build/tests-san: $(TEST_SRC) tests/test.h tests/student_ops.h genmod.h | build
	$(CC) -std=c99 $(WARN) -O1 -g $(THREADS) -fno-omit-frame-pointer -fsanitize=address,undefined \
	    -fno-sanitize-recover=undefined $(STB) -o $@ $(TEST_SRC) $(LDLIBS)
# the tiny step whose tape lecture 00 prints and draws (lectures/figures/runs.txt)
build/tape: lectures/figures/tape.c genmod.h build/genmod.o
	$(CC) $(DEMO_CFLAGS) -DGENMOD_NO_IMPLEMENTATION -o $@ $< build/genmod.o $(LDLIBS)
build/crash_ckpt: tests/crash_ckpt.c genmod.h | build
	$(CC) -std=c99 $(WARN) -O2 -g $(THREADS) $(STB) -o $@ tests/crash_ckpt.c $(LDLIBS)

# the fuzz targets tests/fuzz/fuzz_*.c with a main that replays files, under ASan+UBSan
# (make test replays the seed and regression corpora); make fuzz runs them with libFuzzer
FUZZ_REPLAY := $(patsubst tests/fuzz/fuzz_%.c,build/fuzz/replay/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS  = -std=c99 $(WARN) -O1 -g $(THREADS) -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined $(STB)
build/fuzz/replay/common.o: tests/fuzz/common.c tests/fuzz/fuzz.h genmod.h
	@mkdir -p $(@D)
	$(CC) $(FUZZ_CFLAGS) -c -o $@ $<
build/fuzz/replay/%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h build/fuzz/replay/common.o
	$(CC) $(FUZZ_CFLAGS) -o $@ $< tests/fuzz/replay.c build/fuzz/replay/common.o $(LDLIBS)
fuzz:
	@STB="$(STB)" sh tests/fuzz/run.sh fuzz
.PHONY: fuzz

test: build/tests build/tests-san build/crash_ckpt $(DEMOS) $(FUZZ_REPLAY)
	@CC="$(CC)" CXX="$(CXX)" CFLAGS="$(CFLAGS)" STB="$(STB)" MAKE="$(SUBMAKE)" sh tests/run.sh $(notdir $(DEMOS))

valgrind: build/tests
	@sh tests/valgrind.sh

build/bench: bench/bench.c genmod.h | build
	$(CC) $(DEMO_CFLAGS) -o $@ bench/bench.c $(LDLIBS)

bench: build/bench
	@sh bench/run.sh build/bench

figures:
	@sh lectures/figures/run.sh $(RUNS)

gallery: all
	@sh tools/gallery.sh
gallery-check:
	@sh tools/gallery-check.sh
.PHONY: gallery gallery-check

VERSION  = $(shell sed -n 's/.*GENMOD_VERSION "\(.*\)"/\1/p' genmod.h)
install:
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 genmod.h $(DESTDIR)$(PREFIX)/include/genmod.h
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' '' 'Name: genmod' \
	    'Description: deep generative models taught in one C header' 'Version: $(VERSION)' \
	    'Cflags: -I$${includedir} $(strip $(STB)) -pthread' 'Libs: -lm -pthread' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/genmod.pc

# the two files install wrote; the folders stay (they may hold other files of yours)
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/genmod.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/genmod.pc

clean:
	rm -rf build out

.PHONY: all test install uninstall clean bench figures valgrind FORCE
