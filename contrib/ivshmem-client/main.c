/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ivshmem-client: join an ivshmem-server as a peer and run commands on
 * the shared memory and the doorbells, from the command line (scripts)
 * or from standard input (interactive).
 */

#include "qemu/osdep.h"
#include <getopt.h>
#include <poll.h>
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qobject/json-writer.h"
#include "qemu-version.h"
#include "ivshmem-client.h"

#define DEFAULT_SOCKET          "/tmp/ivshmem_socket"
#define DEFAULT_SETUP_TIMEOUT   5000
/* Without the setup-end marker, this much silence ends the setup. */
#define SETUP_QUIET_MS          200
#define DEFAULT_READ_LEN        16
#define MAX_READ_LEN            (64 * 1024)

typedef struct Options {
    const char *socket_path;
    GPtrArray *commands;
    int setup_timeout;
    bool verbose;
    bool json;
} Options;

/* Exit statuses, documented in --help and the manual. */
enum {
    EXIT_CMD_FAILED = 1,        /* a command failed */
    EXIT_TIMEOUT = 2,           /* a wait timed out, nothing else failed */
    EXIT_NO_SERVER = 3,         /* could not join, or lost, the server */
};

typedef enum CmdResult {
    CMD_OK,
    CMD_TIMEOUT,
    CMD_FAILED,
    CMD_QUIT,
} CmdResult;

static const char *progname = "ivshmem-client";

/* --json: every line on stdout is one JSON object. */
static bool json_output;
/* The command being run, named in its error events. */
static const char *current_command;

static void usage(void)
{
    printf("Usage: %s [OPTION]... [COMMAND]...\n"
           "Join an ivshmem-server as a peer.  Each COMMAND argument (and "
           "each -c)\nis one command; they run in order, then the client "
           "exits.  Without\ncommands, they are read from standard input, "
           "one per line.\n\n"
           "Options:\n"
           "  -S, --socket PATH      server socket (default %s)\n"
           "  -c, --command CMD      run CMD (may be repeated)\n"
           "  -t, --timeout MS       how long to wait for the server's "
           "setup\n"
           "                         (default %d)\n"
           "  -v, --verbose          report peers as they come and go\n"
           "      --json             write JSON Lines to stdout (see below)\n"
           "  -h, --help             show this help and exit\n"
           "      --version          show the version and exit\n\n"
           "Commands:\n"
           "  ring PEER VECTOR       interrupt PEER on VECTOR\n"
           "  wait VECTOR [TIMEOUT]  wait for own VECTOR, TIMEOUT in ms "
           "(default:\n"
           "                         forever); fails on timeout\n"
           "  dump                   own ID, peers and their vector counts\n"
           "  read OFFSET [LEN]      hex dump of LEN bytes of shared memory "
           "(default %d)\n"
           "  write OFFSET STRING    copy STRING (the rest of the line) to "
           "OFFSET\n"
           "  quit                   exit\n"
           "Numbers are decimal (leading zeros too) or 0x hexadecimal.\n\n"
           "Exit status: 0 if every command succeeded, 1 if one failed, 2 if "
           "a wait\ntimed out and nothing else failed, 3 if the server could "
           "not be joined\nor was lost.  Commands given as arguments stop at "
           "the first failure;\ncommands read from standard input all "
           "run.\n\n"
           "With --json, each line on stdout is one JSON object; its "
           "\"event\" key\nsays what it is.  Errors also still go to "
           "stderr as text.  The first\nthree come only with -v; "
           "peer-vector also lists our own vectors:\n"
           "  {\"event\": \"peer-vector\", \"peer\": 0, \"vector\": 0}\n"
           "  {\"event\": \"setup-done\", \"id\": 1, \"vectors\": 1, "
           "\"shm_size\": 4194304,\n   \"marker\": true}\n"
           "  {\"event\": \"peer-gone\", \"peer\": 0}\n"
           "  {\"event\": \"interrupt\", \"vector\": 0}    "
           "(wait; \"timeout\" if none came)\n"
           "  {\"event\": \"dump\", \"id\": 1, \"vectors\": 1, "
           "\"shm_size\": 4194304,\n"
           "   \"peers\": [{\"id\": 0, \"vectors\": 1}]}\n"
           "  {\"event\": \"read\", \"offset\": 0, \"length\": 2, "
           "\"data\": \"6869\"}\n"
           "  {\"event\": \"error\", \"command\": \"wait x\", "
           "\"message\": \"invalid vector 'x'\"}\n"
           "  {\"event\": \"join-failed\", \"socket\": \"/tmp/s\", "
           "\"message\": \"...\",\n   \"refused\": false}\n"
           "  {\"event\": \"server-lost\", \"message\": \"...\"}\n",
           progname, DEFAULT_SOCKET, DEFAULT_SETUP_TIMEOUT,
           DEFAULT_READ_LEN);
}

/* JSON output: one object per line, its "event" first. */

static JSONWriter *json_new(const char *event)
{
    JSONWriter *w = json_writer_new(false);

    json_writer_start_object(w, NULL);
    json_writer_str(w, "event", event);
    return w;
}

/* Close the object, write it as one line and free the writer. */
static void json_emit(JSONWriter *w)
{
    json_writer_end_object(w);
    printf("%s\n", json_writer_get(w));
    fflush(stdout);
    json_writer_free(w);
}

/* An error: on stderr as text and, with --json, as an error event. */
static void G_GNUC_PRINTF(1, 2) report(const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    JSONWriter *out;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_report("%s", msg);
    if (json_output) {
        out = json_new("error");
        if (current_command) {
            json_writer_str(out, "command", current_command);
        }
        json_writer_str(out, "message", msg);
        json_emit(out);
    }
}

static void report_err(Error *err)
{
    report("%s", error_get_pretty(err));
    error_free(err);
}

static void notify(void *opaque, IvshmemClientEvent event, unsigned id,
                   unsigned vector)
{
    JSONWriter *out;

    if (json_output) {
        /* setup-done is written by main(), with or without the marker. */
        if (event == IVSHMEM_CLIENT_PEER_VECTOR) {
            out = json_new("peer-vector");
            json_writer_int64(out, "peer", id);
            json_writer_int64(out, "vector", vector);
            json_emit(out);
        } else if (event == IVSHMEM_CLIENT_PEER_GONE) {
            out = json_new("peer-gone");
            json_writer_int64(out, "peer", id);
            json_emit(out);
        }
        return;
    }
    switch (event) {
    case IVSHMEM_CLIENT_SETUP_DONE:
        printf("setup done, own ID %u\n", id);
        break;
    case IVSHMEM_CLIENT_PEER_VECTOR:
        printf("peer %u: vector %u\n", id, vector);
        break;
    case IVSHMEM_CLIENT_PEER_GONE:
        printf("peer %u: gone\n", id);
        break;
    }
    fflush(stdout);
}

/* Commands */

/* Decimal, or hexadecimal after 0x; never octal, never negative. */
static bool arg_u64(const char *what, const char *str, uint64_t *val)
{
    bool hex = str && (g_str_has_prefix(str, "0x") ||
                       g_str_has_prefix(str, "0X"));

    if (!str || !g_ascii_isxdigit(str[hex ? 2 : 0]) ||
        qemu_strtou64(hex ? str + 2 : str, NULL, hex ? 16 : 10, val) < 0) {
        report("invalid %s '%s'", what, str ? str : "(missing)");
        return false;
    }
    return true;
}

static bool arg_uint(const char *what, const char *str, unsigned max,
                       unsigned *val)
{
    uint64_t v;

    if (!arg_u64(what, str, &v)) {
        return false;
    }
    if (v > max) {
        report("%s %" PRIu64 " is out of range (at most %u)", what, v,
                     max);
        return false;
    }
    *val = v;
    return true;
}

/* Bounds-checked pointer into the shared memory. */
static uint8_t *shm_range(IvshmemClient *c, uint64_t offset, uint64_t len)
{
    uint64_t size;
    uint8_t *shm = ivshmem_client_get_shm(c, &size);

    if (offset > size || len > size - offset) {
        report("%" PRIu64 " bytes at offset %" PRIu64 " do not fit "
                     "in %" PRIu64 " bytes of shared memory", len, offset,
                     size);
        return NULL;
    }
    return shm + offset;
}

static CmdResult cmd_ring(IvshmemClient *c, char **argv)
{
    Error *err = NULL;
    unsigned peer, vector;

    if (!arg_uint("peer", argv[1], IVSHMEM_MAX_PEER_ID, &peer) ||
        !arg_uint("vector", argv[1] ? argv[2] : NULL,
                    IVSHMEM_MAX_VECTORS - 1, &vector)) {
        return CMD_FAILED;
    }
    if (!ivshmem_client_ring(c, peer, vector, &err)) {
        report_err(err);
        return CMD_FAILED;
    }
    return CMD_OK;
}

static CmdResult cmd_wait(IvshmemClient *c, char **argv)
{
    Error *err = NULL;
    unsigned vector, timeout = 0;
    int ret;

    if (!arg_uint("vector", argv[1], IVSHMEM_MAX_VECTORS - 1, &vector) ||
        (argv[1] && argv[2] &&
         !arg_uint("timeout", argv[2], INT_MAX, &timeout))) {
        return CMD_FAILED;
    }
    ret = ivshmem_client_wait(c, vector, argv[1] && argv[2] ? timeout : -1,
                              &err);
    if (ret < 0) {
        report_err(err);
        return CMD_FAILED;
    }
    if (json_output) {
        JSONWriter *out = json_new(ret ? "interrupt" : "timeout");

        json_writer_int64(out, "vector", vector);
        json_emit(out);
    } else {
        printf("vector %u: %s\n", vector, ret ? "interrupt" : "timeout");
    }
    return ret ? CMD_OK : CMD_TIMEOUT;
}

static void dump_json(IvshmemClient *c)
{
    JSONWriter *out = json_new("dump");
    int id = ivshmem_client_get_id(c);
    unsigned n, i, *ids;
    uint64_t size;

    ivshmem_client_get_shm(c, &size);
    json_writer_int64(out, "id", id);
    json_writer_int64(out, "vectors", ivshmem_client_peer_vectors(c, id));
    json_writer_uint64(out, "shm_size", size);
    n = ivshmem_client_get_peers(c, NULL, 0);
    ids = g_new(unsigned, n + 1);
    ivshmem_client_get_peers(c, ids, n);
    json_writer_start_array(out, "peers");
    for (i = 0; i < n; i++) {
        json_writer_start_object(out, NULL);
        json_writer_int64(out, "id", ids[i]);
        json_writer_int64(out, "vectors",
                          ivshmem_client_peer_vectors(c, ids[i]));
        json_writer_end_object(out);
    }
    json_writer_end_array(out);
    g_free(ids);
    json_emit(out);
}

static CmdResult cmd_dump(IvshmemClient *c, char **argv)
{
    unsigned n, i, *ids;
    uint64_t size;

    if (json_output) {
        dump_json(c);
        return CMD_OK;
    }
    ivshmem_client_get_shm(c, &size);
    printf("own ID %d, %d vector(s), %" PRIu64 " bytes of shared memory\n",
           ivshmem_client_get_id(c),
           ivshmem_client_peer_vectors(c, ivshmem_client_get_id(c)), size);
    n = ivshmem_client_get_peers(c, NULL, 0);
    ids = g_new(unsigned, n + 1);
    ivshmem_client_get_peers(c, ids, n);
    printf("%u peer(s)\n", n);
    for (i = 0; i < n; i++) {
        printf("peer %u: %d vector(s)\n", ids[i],
               ivshmem_client_peer_vectors(c, ids[i]));
    }
    g_free(ids);
    return CMD_OK;
}

static CmdResult cmd_read(IvshmemClient *c, char **argv)
{
    uint64_t offset, len = DEFAULT_READ_LEN, i;
    uint8_t *p;

    if (!arg_u64("offset", argv[1], &offset) ||
        (argv[1] && argv[2] && !arg_u64("length", argv[2], &len))) {
        return CMD_FAILED;
    }
    if (len > MAX_READ_LEN) {
        report("at most %d bytes at a time", MAX_READ_LEN);
        return CMD_FAILED;
    }
    p = shm_range(c, offset, len);
    if (!p) {
        return CMD_FAILED;
    }
    if (json_output) {
        JSONWriter *out = json_new("read");
        g_autoptr(GString) hex = g_string_sized_new(2 * len);

        for (i = 0; i < len; i++) {
            g_string_append_printf(hex, "%02x", p[i]);
        }
        json_writer_uint64(out, "offset", offset);
        json_writer_uint64(out, "length", len);
        json_writer_str(out, "data", hex->str);
        json_emit(out);
        return CMD_OK;
    }
    for (i = 0; i < len; i++) {
        if (i % 16 == 0) {
            printf("%s%08" PRIx64 ":", i ? "\n" : "", offset + i);
        }
        printf(" %02x", p[i]);
    }
    printf("\n");
    return CMD_OK;
}

/* Skip a word and the one blank after it. */
static const char *skip_word(const char *p)
{
    p += strcspn(p, " \t");
    return *p ? p + 1 : p;
}

static CmdResult cmd_write(IvshmemClient *c, char **argv, const char *line)
{
    const char *str;
    uint64_t offset;
    uint8_t *p;

    if (!arg_u64("offset", argv[1], &offset)) {
        return CMD_FAILED;
    }
    /* The string is the rest of the line, blanks and all. */
    str = line + strspn(line, " \t");
    str = skip_word(str);
    str += strspn(str, " \t");
    str = skip_word(str);
    if (!*str) {
        report("write: no STRING to write at offset %" PRIu64, offset);
        return CMD_FAILED;
    }
    p = shm_range(c, offset, strlen(str));
    if (!p) {
        return CMD_FAILED;
    }
    memcpy(p, str, strlen(str));
    return CMD_OK;
}

/* The words of @line, without the empty ones that repeated blanks make. */
static GStrv split_words(const char *line)
{
    g_auto(GStrv) all = g_strsplit_set(line, " \t", -1);
    GPtrArray *words = g_ptr_array_new();
    char **p;

    for (p = all; *p; p++) {
        if (**p) {
            g_ptr_array_add(words, g_strdup(*p));
        }
    }
    g_ptr_array_add(words, NULL);
    return (GStrv)g_ptr_array_free(words, false);
}

static CmdResult run_command(IvshmemClient *c, const char *line)
{
    g_autofree char *trimmed = g_strchomp(g_strdup(line));
    g_auto(GStrv) argv = split_words(trimmed);
    CmdResult ret = CMD_FAILED;

    current_command = trimmed;
    if (!argv[0] || !*argv[0] || argv[0][0] == '#') {
        ret = CMD_OK;
    } else if (!strcmp(argv[0], "ring")) {
        ret = cmd_ring(c, argv);
    } else if (!strcmp(argv[0], "wait")) {
        ret = cmd_wait(c, argv);
    } else if (!strcmp(argv[0], "dump")) {
        ret = cmd_dump(c, argv);
    } else if (!strcmp(argv[0], "read")) {
        ret = cmd_read(c, argv);
    } else if (!strcmp(argv[0], "write")) {
        ret = cmd_write(c, argv, trimmed);
    } else if (!strcmp(argv[0], "quit")) {
        ret = CMD_QUIT;
    } else {
        report("unknown command '%s' (try --help)", argv[0]);
    }
    current_command = NULL;
    fflush(stdout);
    return ret;
}

/* Interactive mode */

/* The exit status for the worst of the results seen. */
static int exit_status(bool failed, bool timed_out)
{
    return failed ? EXIT_CMD_FAILED : timed_out ? EXIT_TIMEOUT : EXIT_SUCCESS;
}

/*
 * Run the complete lines in @input, noting failures in *@failed and
 * timeouts in *@timed_out; false once "quit" was given.
 */
static bool run_lines(IvshmemClient *c, GString *input, bool *failed,
                      bool *timed_out)
{
    char *nl;

    while ((nl = memchr(input->str, '\n', input->len))) {
        g_autofree char *line = g_strndup(input->str, nl - input->str);

        g_string_erase(input, 0, nl - input->str + 1);
        switch (run_command(c, line)) {
        case CMD_OK:
            break;
        case CMD_TIMEOUT:
            *timed_out = true;
            break;
        case CMD_FAILED:
            *failed = true;
            break;
        case CMD_QUIT:
            return false;
        }
    }
    return true;
}

/* Lines from stdin; server messages are handled while waiting for them. */
static int interactive(IvshmemClient *c)
{
    g_autoptr(GString) input = g_string_new(NULL);
    struct pollfd pfd[2] = {
        { .fd = STDIN_FILENO, .events = POLLIN },
        { .fd = ivshmem_client_get_fd(c), .events = POLLIN },
    };
    bool failed = false, timed_out = false;
    Error *err = NULL;
    char buf[4096];
    ssize_t n;

    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            report("poll failed: %s", strerror(errno));
            return EXIT_CMD_FAILED;
        }
        if (pfd[1].revents && !ivshmem_client_handle_readable(c, &err)) {
            if (json_output) {
                JSONWriter *out = json_new("server-lost");

                json_writer_str(out, "message", error_get_pretty(err));
                json_emit(out);
            }
            error_report_err(err);
            return EXIT_NO_SERVER;
        }
        if (!pfd[0].revents) {
            continue;
        }
        n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            /* A last line without a newline still counts. */
            g_string_append_c(input, '\n');
            run_lines(c, input, &failed, &timed_out);
            if (n < 0) {
                report("cannot read commands: %s", strerror(errno));
                failed = true;
            }
            return exit_status(failed, timed_out);
        }
        g_string_append_len(input, buf, n);
        if (!run_lines(c, input, &failed, &timed_out)) {
            return exit_status(failed, timed_out);
        }
    }
}

static int scripted(IvshmemClient *c, GPtrArray *commands)
{
    unsigned i;

    for (i = 0; i < commands->len; i++) {
        switch (run_command(c, g_ptr_array_index(commands, i))) {
        case CMD_OK:
            break;
        case CMD_TIMEOUT:
            return EXIT_TIMEOUT;
        case CMD_FAILED:
            return EXIT_CMD_FAILED;
        case CMD_QUIT:
            return EXIT_SUCCESS;
        }
    }
    return EXIT_SUCCESS;
}

static void parse_args(Options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 'S' },
        { "command", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "verbose", no_argument, NULL, 'v' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c, i;

    while ((c = getopt_long(argc, argv, "S:c:t:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'S':
            o->socket_path = optarg;
            break;
        case 'c':
            g_ptr_array_add(o->commands, optarg);
            break;
        case 't':
            if (qemu_strtoi(optarg, NULL, 10, &o->setup_timeout) < 0 ||
                o->setup_timeout < 0) {
                error_report("invalid timeout '%s'", optarg);
                exit(EXIT_FAILURE);
            }
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            usage();
            exit(EXIT_SUCCESS);
        case 'V':
            printf("%s of the ivshmem series, built in a QEMU %s tree\n"
                   "ivshmem protocol version %d, setup-end marker "
                   "understood\n", progname, QEMU_FULL_VERSION,
                   IVSHMEM_PROTOCOL_VERSION);
            exit(EXIT_SUCCESS);
        default:
            fprintf(stderr, "Try '%s --help' for more information.\n",
                    progname);
            exit(EXIT_FAILURE);
        }
    }
    for (i = optind; i < argc; i++) {
        g_ptr_array_add(o->commands, argv[i]);
    }
}

int main(int argc, char **argv)
{
    g_autoptr(IvshmemClient) c = ivshmem_client_new();
    g_autoptr(GPtrArray) commands = g_ptr_array_new();
    Options o = {
        .socket_path = DEFAULT_SOCKET,
        .commands = commands,
        .setup_timeout = DEFAULT_SETUP_TIMEOUT,
    };
    Error *err = NULL;
    bool refused;

    error_init(argv[0]);
    progname = g_path_get_basename(argv[0]);
    /* A write to a dead peer's fd must fail, not kill the tool. */
    signal(SIGPIPE, SIG_IGN);
    parse_args(&o, argc, argv);
    json_output = o.json;
    if (o.verbose) {
        ivshmem_client_set_notify(c, notify, NULL);
    }
    if (!ivshmem_client_connect(c, o.socket_path, &err) ||
        !ivshmem_client_wait_setup(c, o.setup_timeout, SETUP_QUIET_MS,
                                   &err)) {
        refused = ivshmem_client_get_id(c) < 0 &&
                  strstr(error_get_pretty(err), "closed the connection");
        if (refused) {
            /* What a server at its --max-peers limit does. */
            error_append_hint(&err, "The server closed the connection "
                              "before giving this client an ID: it refuses "
                              "new peers when it has --max-peers of them "
                              "(its log says so).\n");
        }
        error_prepend(&err, "cannot join the server at %s: ", o.socket_path);
        if (json_output) {
            JSONWriter *out = json_new("join-failed");

            json_writer_str(out, "socket", o.socket_path);
            json_writer_str(out, "message", error_get_pretty(err));
            json_writer_bool(out, "refused", refused);
            json_emit(out);
        }
        error_report_err(err);
        return EXIT_NO_SERVER;
    }
    if (json_output && o.verbose) {
        uint64_t size;
        JSONWriter *out = json_new("setup-done");
        int id = ivshmem_client_get_id(c);

        ivshmem_client_get_shm(c, &size);
        json_writer_int64(out, "id", id);
        json_writer_int64(out, "vectors", ivshmem_client_peer_vectors(c, id));
        json_writer_uint64(out, "shm_size", size);
        json_writer_bool(out, "marker", ivshmem_client_setup_done(c));
        json_emit(out);
    }
    return commands->len ? scripted(c, commands) : interactive(c);
}
