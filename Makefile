# rayc: one non-recursive Makefile. Objects go to build/$(FLAVOR)/ (normal or asan); generated
# protobuf-c code to build/gen/. Every directory's .c files are found by wildcard, so adding a file
# needs no edit here.
#
#   make            build every daemon, the CLI, librayc, the examples and the tests
#   make test       run the unit and integration tests (exits non-zero on any failure)
#   make asan       the same under AddressSanitizer + UndefinedBehaviorSanitizer (build/asan/)
#   make fuzz       the libFuzzer harnesses of tests/fuzz/, FUZZ_SECONDS each (clang, build/fuzz/)
#   make chaos      the chaos suite for CHAOS_SECONDS (600) on 3 namespace hosts (root)
#   make demo       install dependencies, build, start a local cluster, run the example job, stop
#   make deps       install the Debian packages the build and tests need (when missing)
#   make bench      microbenchmarks
#   make install    install binaries, librayc, rayc.h, rayc.pc, systemd units, config, man pages
#                   (PREFIX=/usr/local, DESTDIR, SYSCONFDIR=/etc, UNITDIR; deploy/install.sh)
#   make deb        the Debian package build/rayc_<version>_<arch>.deb (deploy/make-deb.sh)
#   make config     regenerate deploy/rayc.yaml from the daemons' settings tables
#   make test-system  the long tests: real systemd in containers, `rayc up` over ssh (root)

# No built-in rules: with them GNU make tries to remake every included .d file through each
# implicit rule (a no-op build took 75-115 s of CPU). pkg-config runs once per make (:=).
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:

FLAVOR ?= normal
B := build/$(FLAVOR)
G := build/gen
PKGS := grpc libprotobuf-c libuv yaml-0.1 libsystemd hiredis
PKGS += libarchive libcrypto jansson # jobs: working-dir packages, SHA-256, governance records
PKGS += libmicrohttpd # the head's HTTP endpoint and every daemon's /metrics
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
CURL_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null) # rayc job over the Jobs REST API

CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
        -Wwrite-strings -Wformat=2 -fno-common
# -fvisibility=hidden: librayc exports only what its headers mark RAYC_EXTERN (the rayc_* API);
# executables and static libraries are unaffected.
CFLAGS := -std=c11 -D_GNU_SOURCE -g -O2 -fPIC -fvisibility=hidden $(WARN)
ifeq ($(FLAVOR),asan)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
# libFuzzer harnesses (tests/fuzz/fuzz_*.c) and the code they reach, built with clang (build/fuzz/).
ifeq ($(FLAVOR),fuzz)
CC := clang
CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=fuzzer,address,undefined
endif
CPPFLAGS := -I. -isystem $(G) -Iinclude $(PKG_CFLAGS) -MMD -MP
LDLIBS := $(PKG_LIBS) -lpthread -ldl -lm

PROTOS := $(wildcard proto/*.proto)
PB_C := $(patsubst proto/%.proto,$(G)/proto/%.pb-c.c,$(PROTOS))
PB_H := $(PB_C:.c=.h)
PB_O := $(patsubst $(G)/%.c,$(B)/gen/%.o,$(PB_C))

obj = $(patsubst %.c,$(B)/%.o,$(1))
COMMON_O := $(call obj,$(wildcard common/*.c)) $(PB_O)
GCS_O := $(call obj,$(filter-out gcs/main.c,$(wildcard gcs/*.c)))
STORE_O := $(call obj,$(filter-out object-store/main.c object-store/store_client.c,$(wildcard object-store/*.c)))
STORECLIENT_O := $(call obj,object-store/store_client.c)
RAYLET_O := $(call obj,$(filter-out raylet/main.c,$(wildcard raylet/*.c)))
CW_O := $(call obj,$(filter-out worker/main.c worker/zygote.c,$(wildcard worker/*.c)))
API_O := $(call obj,$(wildcard client/*.c))
CLI_O := $(call obj,$(wildcard client/cli/*.c))

LIBCOMMON := $(B)/lib/libcommon.a
LIBRAYC := $(B)/lib/librayc.so
BINS := $(B)/bin/rayc-gcs $(B)/bin/rayc-store $(B)/bin/rayc-raylet $(B)/bin/rayc-worker $(B)/bin/rayc \
        $(B)/bin/rayc-dashboard
EXAMPLES := $(B)/lib/libexample_tasks.so $(B)/bin/example_driver $(B)/lib/libtest_tasks.so $(B)/lib/libjob_tasks.so \
            $(B)/lib/libtest_other.so
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(B)/tests/%,$(wildcard tests/integration/test_*.c))
TEST_HELPERS := $(patsubst tests/helpers/%.c,$(B)/tests/%,$(wildcard tests/helpers/*.c))
RPATH := -Wl,-rpath,'$$ORIGIN/../lib'
BENCH_TASKS := $(B)/bench/bench_tasks $(B)/lib/libbench_tasks.so $(B)/bench/task_events_cost
BENCH_ACTORS := $(B)/bench/bench_actors $(B)/lib/libbench_actors.so
STORE_BENCH := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/store_*.c))
GCS_BENCH := $(B)/bench/gcs_bench
MEMCPY_BENCH := $(B)/bench/memcpy_bench
WAKEUP_BENCH := $(B)/bench/wakeup_bench
PROCESS_FLOOR := $(B)/bench/process_floor
SYSTEM_TESTS := $(patsubst tests/system/%.c,$(B)/tests/%,$(wildcard tests/system/test_*.c))
TEST_DRIVERS := $(patsubst tests/drivers/%.c,$(B)/tests/drivers/%,$(wildcard tests/drivers/*.c))

# What the tests need (make test builds no benchmark), and the benchmarks.
TEST_BINS = $(BINS) $(LIBRAYC) $(EXAMPLES) $(TEST_DRIVERS) $(UNIT_TESTS) $(INTEG_TESTS) $(TEST_HELPERS) $(SYSTEM_TESTS)
BENCH_BINS = $(BENCH_TASKS) $(BENCH_ACTORS) $(STORE_BENCH) $(GCS_BENCH) $(MEMCPY_BENCH) $(WAKEUP_BENCH) $(PROCESS_FLOOR)
all: $(TEST_BINS) $(BENCH_BINS)
# Keep intermediate objects and generated code (pattern chains would delete them), without
# `.SECONDARY:` for every target: that hid deleted or moved headers named in the .d files, so
# objects built against them were not rebuilt.
.PRECIOUS: $(B)/%.o $(G)/proto/%.pb-c.c $(G)/proto/%.pb-c.h
.PHONY: all test unit integration asan test-asan demo deps bench clean format install deb config test-system python

# Generated code is needed before any compile (headers), so every object waits for it.
$(G)/proto/%.pb-c.c $(G)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(G)
	protoc-c -I. --c_out=$(G) $<

$(B)/gen/%.o: $(G)/%.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -w -c -o $@ $<

$(B)/%.o: %.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The git revision goes into governance records; gcs_version.o is rebuilt when it changes.
RAYC_GIT_REV := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
$(shell mkdir -p $(B) && (echo '$(RAYC_GIT_REV)' | cmp -s - $(B)/git-rev || echo '$(RAYC_GIT_REV)' > $(B)/git-rev))
$(B)/gcs/gcs_version.o: $(B)/git-rev
$(B)/gcs/gcs_version.o: CPPFLAGS += -DRAYC_GIT_REV='"$(RAYC_GIT_REV)"'

$(LIBCOMMON): $(COMMON_O)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(B)/lib/libgcs.a: $(GCS_O)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libstore.a: $(STORE_O)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libcw.a: $(API_O) $(CW_O) $(STORECLIENT_O)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(B)/lib/libraylet.a: $(RAYLET_O)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^

# librayc carries a soname (librayc.so.$(SOVERSION)); programs linked here record it, so the build
# tree has the librayc.so.$(SOVERSION) link that make install also makes.
RAYC_VERSION := $(shell sed -n 's/^\#define RAYC_VERSION_STRING *"\(.*\)"/\1/p' include/rayc_errors.h)
SOVERSION := $(shell sed -n 's/^\#define RAYC_VERSION_MAJOR *\([0-9]*\)/\1/p' include/rayc_errors.h)
$(LIBRAYC): $(API_O) $(CW_O) $(STORECLIENT_O) $(COMMON_O)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,librayc.so.$(SOVERSION) -o $@.$$$$.tmp $^ $(LDLIBS) && mv -f $@.$$$$.tmp $@
	ln -sf librayc.so $@.$(SOVERSION)

$(B)/bin/rayc-gcs: $(B)/gcs/main.o $(B)/lib/libgcs.a $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bin/rayc-store: $(B)/object-store/main.o $(B)/lib/libstore.a $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bin/rayc-raylet: $(B)/raylet/main.o $(B)/lib/libraylet.a $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bin/rayc-worker: $(B)/worker/main.o $(B)/worker/zygote.o $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) -L$(B)/lib -lrayc $(RPATH) $(LDLIBS)
# The CLI uses internals (launch, RPC, the store client) librayc does not export: it links its own
# copies statically beside the public API.
CLI_STATIC := $(B)/client/launch.o $(B)/client/launch_gcs.o $(B)/client/launch_ready.o $(STORECLIENT_O) $(LIBCOMMON)
$(B)/bin/rayc: $(CLI_O) $(CLI_STATIC) $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(CLI_O) $(CLI_STATIC) -L$(B)/lib -lrayc $(RPATH) $(LDLIBS) $(CURL_LIBS)

# The head's HTTP endpoint: its own objects, the state API's client side (shared with the CLI) and
# libcommon (not librayc: it runs no tasks). Its pages are compiled in (dash_static.c, .incbin).
DASH_O := $(call obj,$(wildcard dashboard/*.c)) $(call obj,client/cli/cli_state.c client/cli/cli_state_objects.c client/cli/cli_common.c)
$(B)/dashboard/dash_static.o: $(wildcard dashboard/static/*)
$(B)/bin/rayc-dashboard: $(DASH_O) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Examples: a shared library of tasks (resolved against librayc at dlopen time) and its driver.
$(B)/lib/libexample_tasks.so: $(B)/examples/example_tasks.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^
# Benchmarks through the public API: bench_tasks (a driver) and its task library.
$(B)/lib/libbench_tasks.so: $(B)/bench/bench_lib.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^
$(B)/bench/bench_tasks: $(B)/bench/bench_tasks.o $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -L$(B)/lib -lrayc $(RPATH) $(LDLIBS)
$(B)/bench/task_events_cost: $(B)/bench/task_events_cost.o $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -L$(B)/lib -lrayc $(RPATH) $(LDLIBS)
# Store benchmarks (bench/store_*.c): standalone programs that start their own rayc-store.
$(B)/bench/store_%: $(B)/bench/store_%.o $(B)/lib/libstore.a $(STORECLIENT_O) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The GCS's cost of scale: speaks the GCS protocol directly (libcommon and the generated code).
$(GCS_BENCH): $(B)/bench/gcs_bench.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The copy bandwidth the put rows are held against: plain memcpy into warm shared memory.
$(MEMCPY_BENCH): $(B)/bench/memcpy_bench.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread

# The wake-up cost the sync latency row is made of: two processes bouncing a byte, per placement.
$(WAKEUP_BENCH): $(B)/bench/wakeup_bench.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^

# What one process per actor costs at least (fork, gRPC's start): links librayc like the zygote.
$(PROCESS_FLOOR): $(B)/bench/process_floor.o $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -L$(B)/lib -lrayc $(RPATH) $(LDLIBS)

# Driver programs that multi-host test scripts run inside namespace hosts.
$(B)/tests/drivers/%: $(B)/tests/drivers/%.o $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -L$(B)/lib -lrayc -Wl,-rpath,'$$ORIGIN/../../lib' $(LDLIBS)

$(B)/lib/libbench_actors.so: $(B)/bench/bench_actors_lib.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^
$(B)/bench/bench_actors: $(B)/bench/bench_actors.o $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -L$(B)/lib -lrayc $(RPATH) $(LDLIBS)

# Task library the job tests ship in a job's working dir (tests/jobs/*.c).
$(B)/lib/libjob_tasks.so: $(call obj,$(wildcard tests/jobs/*.c))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^

# A second job's code with the same task and class names (test_job_zygote).
$(B)/lib/libtest_other.so: $(call obj,tests/zygote/other_lib.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^

# Task library used by the integration tests (tests/tasks/*.c).
$(B)/lib/libtest_tasks.so: $(call obj,$(wildcard tests/tasks/*.c))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $^
$(B)/bin/example_driver: $(B)/examples/example_driver.o $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -L$(B)/lib -lrayc $(RPATH) $(LDLIBS)

# Unit tests link libcommon plus the module their name names (test_gcs_* -> libgcs.a, ...), so a
# module's tests build while other modules are broken. Test helpers (tests/helpers/*.c, programs
# that tests exec) link the same way. Integration tests link librayc and exec the real daemons.
UNIT_MOD_LIBS = $(if $(filter test_cw%,$(1)),$(B)/lib/libcw.a,)$(if $(filter test_gcs%,$(1)),$(B)/lib/libgcs.a,)$(if $(filter test_store%,$(1)),$(B)/lib/libstore.a $(STORECLIENT_O),)$(if $(filter test_raylet%,$(1)),$(B)/lib/libraylet.a,)
.SECONDEXPANSION:
$(B)/tests/%: $(B)/tests/unit/%.o $$(call UNIT_MOD_LIBS,$$*) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(call UNIT_MOD_LIBS,$*) $(LIBCOMMON) $(CHECK_LIBS) $(LDLIBS)
# Integration tests may inspect internals (RPC, the store) with static copies of libcommon; the
# boundary test links librayc alone, with its own xmalloc, log_init and hmap_put; the API types
# test too, as a user's program would.
$(B)/tests/test_boundary $(B)/tests/test_api_types: $(B)/tests/%: $(B)/tests/integration/%.o $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -L$(B)/lib -lrayc $(RPATH) $(CHECK_LIBS) -lpthread -lm
$(B)/tests/%: $(B)/tests/integration/%.o $(STORECLIENT_O) $(LIBCOMMON) $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(STORECLIENT_O) $(LIBCOMMON) -L$(B)/lib -lrayc $(RPATH) $(CHECK_LIBS) $(LDLIBS)
$(B)/tests/%: $(B)/tests/system/%.o $(STORECLIENT_O) $(LIBCOMMON) $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(STORECLIENT_O) $(LIBCOMMON) -L$(B)/lib -lrayc $(RPATH) $(CHECK_LIBS) $(LDLIBS)
$(B)/tests/%: $(B)/tests/helpers/%.o $$(call UNIT_MOD_LIBS,$$*) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(call UNIT_MOD_LIBS,$*) $(LIBCOMMON) $(LDLIBS)

# The Python package (python/rayc/): its .py files copied to $(B)/python/rayc/ and the CPython
# extension rayc._rayc (python/rayc/*.c, over librayc) built for Debian's /usr/bin/python3.
PYTHON := /usr/bin/python3
PY_INCLUDES := $(shell $(PYTHON)-config --includes 2>/dev/null | sed 's/-I/-isystem /g')
PY_EXT := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))" 2>/dev/null)
PY_SRC := $(shell find python/rayc -name '*.py' 2>/dev/null)
PY_OUT := $(patsubst python/%,$(B)/python/%,$(PY_SRC))
PY_EXT_O := $(call obj,$(wildcard python/rayc/*.c))
PY_MOD := $(B)/python/rayc/_rayc$(PY_EXT)
$(PY_EXT_O): CPPFLAGS += $(PY_INCLUDES)
$(B)/python/%.py: python/%.py
	@mkdir -p $(dir $@)
	cp $< $@
$(PY_MOD): $(PY_EXT_O) $(LIBRAYC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@.$$$$.tmp $(PY_EXT_O) -L$(B)/lib -lrayc -Wl,-rpath,'$$ORIGIN/../../lib' && mv -f $@.$$$$.tmp $@
python: $(PY_OUT) $(PY_MOD)
all: python

# libFuzzer harnesses: `make fuzz` runs each for FUZZ_SECONDS (default 300) from its corpus in
# tests/fuzz/corpus/; make test runs each for a few seconds (fuzz-short).
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 300
build/fuzz/fuzz/%: build/fuzz/tests/fuzz/%.o build/fuzz/lib/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# Harnesses that reach code outside libcommon: the dashboard's HTTP handlers.
FUZZ_DASH_O := $(patsubst %.c,build/fuzz/%.o,$(filter-out dashboard/main.c,$(wildcard dashboard/*.c)) \
  $(wildcard client/cli/cli_state*.c) client/cli/cli_common.c)
build/fuzz/fuzz/fuzz_dash_http: build/fuzz/fuzz/%: build/fuzz/tests/fuzz/%.o build/fuzz/lib/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) build/fuzz/lib/libcommon.a $(LDLIBS)
build/fuzz/fuzz/fuzz_dash_http: $(FUZZ_DASH_O)
fuzz-bins: $(FUZZ_BINS)
fuzz-short:
	@$(MAKE) --no-print-directory FLAVOR=fuzz fuzz-bins
	@tests/fuzz/run-fuzz.sh build/fuzz/fuzz 8
fuzz:
	@$(MAKE) --no-print-directory FLAVOR=fuzz fuzz-bins
	@tests/fuzz/run-fuzz.sh build/fuzz/fuzz $(FUZZ_SECONDS)
.PHONY: fuzz fuzz-short fuzz-bins

# The chaos suite (tests/netns/chaos.sh, root + network namespaces): CHAOS_SECONDS of seeded kills
# (CHAOS_SEED: a schedule to replay); make test runs a 30 s version (test_chaos).
CHAOS_SECONDS ?= 600
chaos: $(TEST_BINS)
	@tests/netns/chaos.sh $(abspath $(B)) "$(CHAOS_SEED)" $(CHAOS_SECONDS) 100
.PHONY: chaos


# Tests run one binary at a time; RAYC_BUILD tells integration tests where the daemons are.
PY_TESTS := tests/python/run-pytest
test: $(TEST_BINS) python
	@RAYC_BUILD=$(abspath $(B)) tests/run-tests $(UNIT_TESTS) $(INTEG_TESTS) $(PY_TESTS)
	@$(MAKE) --no-print-directory fuzz-short
unit: $(TEST_BINS)
	@RAYC_BUILD=$(abspath $(B)) tests/run-tests $(UNIT_TESTS)
integration: $(TEST_BINS) python
	@RAYC_BUILD=$(abspath $(B)) tests/run-tests $(INTEG_TESTS) $(PY_TESTS)

# Under the sanitizers tests run in one process (CK_FORK=no) so leaks are reported and fail them.
asan test-asan:
	@CK_FORK=no RAYC_TEST_SLOW=1 $(MAKE) --no-print-directory FLAVOR=asan test

deps:
	@deploy/install-deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@deploy/demo.sh $(abspath $(B))

bench: all
	@RAYC_BUILD=$(abspath $(B)) bench/run-bench

# Installing and packaging (issue 13): scripts in deploy/, so the Makefile stays small.
PREFIX ?= /usr/local
install: all
	@DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" VERSION=$(RAYC_VERSION) SOVERSION=$(SOVERSION) deploy/install.sh $(B)
deb: all
	@VERSION=$(RAYC_VERSION) SOVERSION=$(SOVERSION) deploy/make-deb.sh $(B) build
config: all
	deploy/gen-config.sh $(B)/bin > deploy/rayc.yaml
# Long tests that need root: systemd in containers on namespace hosts, rayc up over ssh.
test-system: all deb
	@RAYC_BUILD=$(abspath $(B)) RAYC_DEB="$(abspath build)/rayc_$(RAYC_VERSION)_$$(dpkg --print-architecture).deb" tests/run-tests $(SYSTEM_TESTS)

clean:
	rm -rf build

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

-include $(shell find build/$(FLAVOR) -name '*.d' 2>/dev/null)
