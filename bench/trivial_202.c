/* trivial_202.c - the benchmarks' reference server: evhttp threads that read each body and answer
 * 202, the ceiling of the HTTP stack cdr-ingest is built on. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#define REPLY_BODY  "{\"accepted\":1}"
#define THREADS_MAX 256

/* One event loop with its own evhttp; its listening socket is its own (SO_REUSEPORT: the kernel
 * spreads connections) or, with --shared-socket, a duplicate of one socket every loop accepts on.
 */
typedef struct worker {
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct evhttp *http;
    struct evbuffer *reply;   /* refilled for every answer: evhttp_send_reply moves it out */
    unsigned long long touch; /* sum of body bytes, so that reading them is not optimised out */
    unsigned long long answered;
} worker;

static const char usage_text[] =
    "usage: trivial-202 --port PORT [--threads N] [--shared-socket]\n"
    "Answers every request on 127.0.0.1:PORT with 202 {\"accepted\":1} after reading its whole\n"
    "body: the ceiling of the evhttp stack, measured beside cdr-ingest by bench/ingest-bench.\n"
    "  --port PORT       TCP port on 127.0.0.1 (required)\n"
    "  --threads N       event loops, each with its own evhttp (default 2)\n"
    "  --shared-socket   all loops accept on one listening socket instead of one SO_REUSEPORT\n"
    "                    socket each\n"
    "Exits on SIGTERM or SIGINT, printing how many requests it answered.\n";

/* Opens a non-blocking listening socket on 127.0.0.1:'port'. Returns the descriptor, or -1 with
 * the reason printed. */
static int listen_on(int port)
{
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("trivial-202: socket");
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        perror("trivial-202: setsockopt");
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "trivial-202: cannot bind 127.0.0.1:%d: %s\n", port, strerror(errno));
        goto fail;
    }
    if (listen(fd, 1024) != 0) {
        perror("trivial-202: listen");
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/* evhttp's generic callback, once per complete request, on the worker's loop: the whole body is
 * already in the input buffer. */
static void on_request(struct evhttp_request *req, void *arg)
{
    worker *w = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > 0) {
        const unsigned char *p = evbuffer_pullup(in, -1);
        if (p) {
            /* One byte per cache line is enough to bring the whole body through the cache. */
            for (size_t i = 0; i < len; i += 64)
                w->touch += p[i];
        }
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(w->reply, REPLY_BODY, sizeof(REPLY_BODY) - 1);
    evhttp_send_reply(req, 202, "Accepted", w->reply);
    w->answered++;
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static void worker_destroy(worker *w)
{
    if (w->http)
        evhttp_free(w->http);
    if (w->reply)
        evbuffer_free(w->reply);
    if (w->base)
        event_base_free(w->base);
}

/* Builds worker 'w' accepting on 'fd', which it owns from then on (evhttp closes it when freed).
 * Returns 0 or -1 with the reason printed. */
static int worker_init(worker *w, int fd)
{
    w->base = event_base_new();
    w->http = w->base ? evhttp_new(w->base) : NULL;
    w->reply = evbuffer_new();
    if (!w->http || !w->reply) {
        fprintf(stderr, "trivial-202: cannot create an event loop\n");
        close(fd);
        return -1;
    }
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
    evhttp_set_gencb(w->http, on_request, w);
    if (!evhttp_accept_socket_with_handle(w->http, fd)) {
        fprintf(stderr, "trivial-202: cannot accept on the listening socket\n");
        close(fd);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"shared-socket", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long port = 0, threads = 2;
    bool shared = false;
    int c, rc = 1, shared_fd = -1;
    char *end;
    worker *workers = NULL;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            port = strtol(optarg, &end, 10);
            if (*end || port < 1 || port > 65535) {
                fprintf(stderr, "trivial-202: --port must be 1..65535\n");
                return 2;
            }
            break;
        case 't':
            threads = strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > THREADS_MAX) {
                fprintf(stderr, "trivial-202: --threads must be 1..%d\n", THREADS_MAX);
                return 2;
            }
            break;
        case 's':
            shared = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (optind != argc || port == 0) {
        fputs(usage_text, stderr);
        return 2;
    }

    /* Loops are stopped from main, which waits for the signal: the loops must be told across
     * threads, and no worker may take the signal itself. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "trivial-202: libevent has no pthreads support\n");
        return 1;
    }

    workers = calloc((size_t)threads, sizeof(*workers));
    if (!workers) {
        fprintf(stderr, "trivial-202: out of memory\n");
        return 1;
    }
    if (shared && (shared_fd = listen_on((int)port)) < 0)
        goto done;
    for (long i = 0; i < threads; i++) {
        /* A shared socket is dup'ed: each loop owns a descriptor of the same socket. */
        int fd = shared ? dup(shared_fd) : listen_on((int)port);
        if (fd < 0 && shared)
            perror("trivial-202: dup");
        if (fd < 0 || worker_init(&workers[i], fd) != 0)
            goto done;
    }
    for (long i = 0; i < threads; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]) != 0) {
            fprintf(stderr, "trivial-202: cannot start a thread\n");
            goto stop;
        }
        workers[i].started = true;
    }
    fprintf(stderr, "trivial-202: listening on 127.0.0.1:%ld with %ld thread(s)%s\n", port, threads,
            shared ? ", one shared socket" : "");

    int sig;
    sigwait(&stop, &sig);
    rc = 0;
stop:;
    unsigned long long answered = 0, touch = 0;
    for (long i = 0; i < threads; i++) {
        if (workers[i].started) {
            event_base_loopbreak(workers[i].base);
            pthread_join(workers[i].thread, NULL);
            answered += workers[i].answered;
            touch += workers[i].touch;
        }
    }
    if (rc == 0)
        fprintf(stderr, "trivial-202: answered %llu requests (body checksum %llu)\n", answered,
                touch);
done:
    for (long i = 0; workers && i < threads; i++)
        worker_destroy(&workers[i]);
    free(workers);
    if (shared_fd >= 0)
        close(shared_fd);
    return rc;
}
