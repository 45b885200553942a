/*
 * berth-monitor: the per-container monitor of berth.
 *
 * One monitor runs per container. It outlives the berth CLI that started it, owns the container's stdio, writes the
 * container's log in Docker's json-file format, serves attach clients and records the container's exit.
 *
 * Contract with berth (all paths absolute):
 *   berth-monitor --runtime PATH --runtime-root DIR --id ID --bundle DIR --dir CTRDIR --log-path FILE
 *     [--tty] [--tty-size ROWSxCOLS] [--stdin] [--log-max-size BYTES] [--log-max-files N]
 *     [--oom-file PATH] [--rootfs-mount PATH] [--sync-fd N] [--exit-command PATH [--exit-arg ARG]...]
 *     [--start] [--attach-wait MS] [--cgroup-path /PATH] [--remove-dir]
 *
 *   - --start: `runtime run --detach` (create and start in one runtime invocation) instead of `runtime create`;
 *     the container is running when the sync line arrives. --attach-wait MS: do not read the container's output
 *     until the first attach client connects (or MS passed), so a client that connects right after the sync line
 *     loses nothing; output waits in the pipe meanwhile.
 *   - --cgroup-path: the spec's cgroupsPath. With it, and runc's state layout (RUNTIME_ROOT/ID/state.json), the
 *     monitor deletes a stopped container itself (what `runc delete` does for one: remove its cgroup in every
 *     hierarchy and its state dir), saving a runtime start; anything unexpected falls back to `runtime delete`.
 *   - --remove-dir: after the cleanup, remove CTRDIR entirely (berth's `run --rm`); berth waits for CTRDIR to go.
 *
 *   - The process berth starts exits 0 at once; the monitor itself runs double-forked in its own session.
 *   - Sync fd: exactly one JSON line, then closed: {"pid":N} once the container is created (berth then runs
 *     `runtime start`), or {"error":"message"} when anything before that failed (the monitor then exits 1 and has
 *     already cleaned up: runtime state deleted, --rootfs-mount unmounted).
 *   - Files in CTRDIR: monitor.pid (the monitor's pid), pid (container pid, written by the runtime),
 *     attach.sock (attach socket, 0600), ctl (FIFO: "1 ROWS COLS\n" resizes the tty), console.sock (tty only,
 *     during create), exit.json (written once the container exited:
 *     {"exitCode":N,"oomKilled":B,"signal":N|null,"finishedAt":"RFC3339Nano"}). All but exit.json are removed
 *     when the monitor is done, so "monitor.pid is gone" means runtime state and mounts are cleaned up.
 *   - Attach protocol: the monitor sends frames [type, 0, 0, 0, len as big-endian u32] + payload, type 1 stdout,
 *     2 stderr, 3 exit (payload = the exit.json object, sent last, then the connection is closed). Bytes a client
 *     sends go to the container's stdin when --stdin; a client's shutdown(SHUT_WR) closes the stdin pipe (non-tty),
 *     a client that disconnects fully leaves stdin open.
 *     Slow clients: while a client is more than 256 KiB behind, the monitor stops reading container output (the
 *     container blocks on write, as with Docker), so attached clients lose nothing; a client that takes nothing for
 *     5 s meanwhile (or gets 1 MiB behind) is dropped, so a stuck client holds the container 5 s at most.
 *   - Log file: one {"log":"...","stream":"stdout|stderr","time":"..."} object per line, lines split on '\n',
 *     partial lines flushed at 16 KiB or at end of stream; rotated to FILE.1 .. FILE.(N-1).
 *
 * Second mode, for `berth exec -t` when none of the client's stdio is a terminal (runc cannot proxy a pty then),
 * for `exec -d -t`, and for `exec -it` (--stdin):
 *   berth-monitor --exec-tty --runtime PATH --runtime-root DIR --id ID --dir CTRDIR --process FILE
 *     --pid-file FILE --console-name NAME [--sync-fd N] [--detach | --stdin]
 *   Runs in the foreground, in the caller's session: `runtime exec --detach --tty --console-socket CTRDIR/NAME
 *   --pid-file FILE --process FILE ID`, takes the pty master runc sends, copies everything the process writes to it
 *   to our stdout (a pty's output: CRLF line ends, stderr merged) until the process exited and its output ended (at
 *   most 2 s of draining after the exit), then exits with the process's code (128+N when killed by signal N).
 *   Without --stdin nothing is read from stdin (the process's input is a terminal nobody types on, as with
 *   `docker exec -t`).
 *   Sync fd: {"pid":N} once the process runs, or {"error":"message"} when the runtime failed (exit 1 then).
 *   A stdout that is gone (EPIPE) ends the proxy: the master is closed, the process sees the terminal hang up.
 *   --detach (`exec -d -t`): the process berth starts exits 0 at once; a forked relay in its own session holds the
 *   master (output discarded) until the process ends, so the process keeps its terminal; the sync line is as above.
 *   --stdin (`exec -it`, berth watching the input for its detach keys): what arrives on our stdin goes to the master
 *   (the process's input; our stdin ending just stops that); SIGWINCH copies the size of our terminal (stdout,
 *   stderr or stdin, the first that is one) to the process's, as does the start. SIGUSR1 detaches (berth sends
 *   it after the sync line): stdio goes to /dev/null, the relay moves to a session of its own and holds the master
 *   (output discarded) until the process ends, so the process keeps running with its terminal.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 16384            /* partial lines are flushed as their own entry at this size */
#define READ_CHUNK 32768              /* one read from a container output fd */
#define CLIENT_HIGH_WATER (256u << 10) /* above this, container output waits for the client ... */
#define CLIENT_STALL_MS 5000          /* ... unless it took nothing for this long: then it is dropped */
#define CLIENT_MAX_PENDING (1u << 20) /* hard bound: a client with more unsent output is dropped at once */
#define MAX_CLIENTS 256
#define STDIN_BUF 32768
#define LOG_BUF 32768
#define ERR_TEXT_MAX 4096
#define DRAIN_MS 2000 /* after the container exited, wait this long at most for its output to end */
#define FLUSH_MS 10000 /* at most this long for clients to take their last output and the exit frame */
#define RUNTIME_KILL_MS 10000
#define RUNTIME_DELETE_MS 30000

enum { FRAME_STDOUT = 1, FRAME_STDERR = 2, FRAME_EXIT = 3 };

static struct {
	const char *runtime, *runtime_root, *id, *bundle, *dir, *log_path;
	bool tty, stdin_open, have_size, start;
	int attach_wait_ms;
	unsigned short rows, cols;
	unsigned long long log_max_size;
	unsigned log_max_files;
	const char *oom_file, *rootfs_mount, *cgroup_path;
	bool remove_dir;
	const char *exit_command;
	char **exit_argv; /* exit_argv[0] = exit_command, NULL-terminated */
	int n_exit_args;
} opt = { .log_max_size = 10485760ULL, .log_max_files = 3 };

static int sync_fd = -1;
static bool had_client; /* an attach client has connected (ends --attach-wait) */
static int dir_fd = -1;
static int sig_fd = -1;
static int devnull = -1;

/* Container process state. */
static pid_t ctr_pid = -1;
static bool ctr_exited;
static int ctr_status;
static struct timespec ctr_finished;

/* ---------- small utilities ---------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *put_digits(char *p, unsigned long v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + width;
}

/* RFC3339 with nanoseconds in UTC, as Docker writes in json-file logs: 2026-11-28T22:27:50.123456789Z. */
static void fmt_time(char out[40], const struct timespec *ts)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	char *p = put_digits(out, (unsigned long)(tm.tm_year + 1900) % 10000, 4);
	*p++ = '-';
	p = put_digits(p, (unsigned long)tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put_digits(p, (unsigned long)tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned long)tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned long)tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned long)tm.tm_sec, 2);
	*p++ = '.';
	p = put_digits(p, (unsigned long)ts->tv_nsec, 9);
	*p++ = 'Z';
	*p = 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_from(int lowfd)
{
	if (close_range((unsigned)lowfd, ~0U, 0) == 0)
		return;
	for (int fd = lowfd; fd < 4096; fd++)
		close(fd);
}

static void xclose(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---------- output buffer with optional fd sink ---------- */

/* Appends to p; when full, flushes to fd (fd >= 0) or drops the rest (fd < 0). */
struct sbuf {
	char *p;
	size_t cap, len;
	int fd;
	unsigned long long flushed; /* bytes written to fd so far */
};

static void sb_flush(struct sbuf *b)
{
	if (b->fd >= 0 && b->len > 0 && write_all(b->fd, b->p, b->len) == 0)
		b->flushed += b->len;
	b->len = 0;
}

static void sb_put(struct sbuf *b, const void *s, size_t n)
{
	const char *src = s;
	while (n > 0) {
		size_t room = b->cap - b->len;
		if (room == 0) {
			if (b->fd < 0)
				return;
			sb_flush(b);
			room = b->cap;
		}
		size_t k = n < room ? n : room;
		memcpy(b->p + b->len, src, k);
		b->len += k;
		src += k;
		n -= k;
	}
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s: 1..4, 0 if invalid, -1 if it is a valid prefix cut off at n. */
static int utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	int len;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	for (int k = 1; k < len; k++) {
		if ((size_t)k >= n)
			return -1;
		unsigned char d = s[k];
		if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF))
			return 0;
	}
	return len;
}

/* Where to cut s so that no UTF-8 sequence is split (a cut-off tail is carried to the next entry). */
static size_t utf8_cut(const unsigned char *s, size_t n)
{
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned char c = s[n - back];
		if (c < 0x80)
			break;
		if (c >= 0xC0)
			return utf8_len(s + n - back, back) == -1 ? n - back : n;
	}
	return n;
}

/* JSON string body: quotes, backslash and control characters escaped, valid UTF-8 kept, invalid bytes U+FFFD. */
static void json_escape(struct sbuf *b, const void *data, size_t n)
{
	const unsigned char *s = data;
	size_t i = 0, start = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		if (c >= 0x80) {
			int l = utf8_len(s + i, n - i);
			if (l > 0) {
				i += (size_t)l;
				continue;
			}
		}
		sb_put(b, s + start, i - start);
		char esc[8];
		switch (c) {
		case '"': sb_str(b, "\\\""); break;
		case '\\': sb_str(b, "\\\\"); break;
		case '\n': sb_str(b, "\\n"); break;
		case '\r': sb_str(b, "\\r"); break;
		case '\t': sb_str(b, "\\t"); break;
		default:
			if (c < 0x20) {
				snprintf(esc, sizeof esc, "\\u%04x", c);
				sb_str(b, esc);
			} else
				sb_str(b, "\\ufffd");
		}
		i++;
		start = i;
	}
	sb_put(b, s + start, i - start);
}

/* ---------- sync fd ---------- */

static void sync_send(const char *line)
{
	if (sync_fd < 0)
		return;
	write_all(sync_fd, line, strlen(line));
	xclose(&sync_fd);
}

/* "what: <strerror(errno)>", in a buffer of its own (each caller reports it once and exits). */
static const char *with_errno(const char *what)
{
	static char msg[512];
	snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
	return msg;
}

static void report_error(const char *msg)
{
	char buf[ERR_TEXT_MAX + 64];
	struct sbuf b = { .p = buf, .cap = sizeof buf - 4, .fd = -1 };
	size_t n = strlen(msg);
	sb_str(&b, "{\"error\":\"");
	json_escape(&b, msg, n > 640 ? 640 : n); /* even all-escaped, it fits */
	sb_str(&b, "\"}\n");
	buf[b.len] = 0;
	sync_send(buf);
}

/* ---------- files in CTRDIR ---------- */

/*
 * tmp + rename, so readers see the old file or the whole new one; durable adds fsync of the file and the directory
 * (exit.json must survive a crash; monitor.pid dies with the process anyway).
 */
static int atomic_write(const char *name, const char *data, size_t n, bool durable)
{
	char tmp[128];
	snprintf(tmp, sizeof tmp, ".%s.tmp.%d", name, (int)getpid());
	int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write_all(fd, data, n) < 0 || (durable && fsync(fd) < 0)) {
		close(fd);
		unlinkat(dir_fd, tmp, 0);
		return -1;
	}
	close(fd);
	if (renameat(dir_fd, tmp, dir_fd, name) < 0) {
		unlinkat(dir_fd, tmp, 0);
		return -1;
	}
	if (durable)
		fsync(dir_fd);
	return 0;
}

/* A unix socket address for CTRDIR/name; long directories go through /proc/<pid>/fd/<dir_fd>. */
static void ctr_sockaddr(struct sockaddr_un *sa, const char *name, pid_t via_pid)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	size_t dl = strlen(opt.dir), nl = strlen(name);
	if (dl + 1 + nl < sizeof sa->sun_path) {
		memcpy(sa->sun_path, opt.dir, dl);
		sa->sun_path[dl] = '/';
		memcpy(sa->sun_path + dl + 1, name, nl + 1);
	} else
		snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/%d/fd/%d/%s", (int)via_pid, dir_fd, name);
}

static int unix_listen(const char *name, int backlog)
{
	struct sockaddr_un sa;
	ctr_sockaddr(&sa, name, getpid());
	unlinkat(dir_fd, name, 0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void remove_runtime_files(void)
{
	static const char *const names[] = { "attach.sock", "ctl", "console.sock", "pid", "monitor.pid" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		unlinkat(dir_fd, names[i], 0);
}

/* Removes every entry of a directory (no subdirectories expected), then the directory. */
static int remove_flat_dir(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* rmdir with retries: processes of the dead PID namespace may still be exiting (EBUSY for a moment). */
static int rmdir_cgroup(const char *path)
{
	for (int delay_us = 500;; delay_us *= 2) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || delay_us > 256000)
			return -1;
		usleep((useconds_t)delay_us);
	}
}

/*
 * What `runc delete` does for a container whose init has exited: remove its cgroup in every hierarchy and its state
 * directory. Returns false (and leaves the rest to `runtime delete --force`) unless everything is as expected.
 */
static bool fast_delete(void)
{
	if (!opt.cgroup_path)
		return false;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s/state.json", opt.runtime_root, opt.id);
	if (access(path, F_OK) != 0)
		return false;
	DIR *d = opendir("/sys/fs/cgroup");
	if (!d)
		return false;
	bool ok = true;
	struct dirent *e;
	bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
	if (v2) {
		snprintf(path, sizeof path, "/sys/fs/cgroup%s", opt.cgroup_path);
		ok = rmdir_cgroup(path) == 0;
	} else {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.' || e->d_type == DT_LNK) /* cpu,cpuacct style links name a hierarchy twice */
				continue;
			snprintf(path, sizeof path, "/sys/fs/cgroup/%s%s", e->d_name, opt.cgroup_path);
			if (rmdir_cgroup(path) < 0)
				ok = false;
		}
	}
	closedir(d);
	if (!ok)
		return false;
	snprintf(path, sizeof path, "%s/%s", opt.runtime_root, opt.id);
	return remove_flat_dir(path) == 0;
}

static int run_runtime(int timeout_ms, ...);

static void delete_container(void)
{
	if (!fast_delete())
		run_runtime(RUNTIME_DELETE_MS, "delete", "--force", opt.id, (char *)NULL);
}

/* Removes CTRDIR and everything below it (--remove-dir); errors are ignored: berth falls back to its own rm. */
static void remove_tree_at(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		unlinkat(parent, name, 0);
		return;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (e->d_type == DT_DIR)
			remove_tree_at(fd, e->d_name);
		else if (unlinkat(fd, e->d_name, 0) < 0 && errno == EISDIR)
			remove_tree_at(fd, e->d_name);
	}
	closedir(d);
	unlinkat(parent, name, AT_REMOVEDIR);
}

static void unmount_rootfs(void)
{
	if (opt.rootfs_mount)
		umount2(opt.rootfs_mount, MNT_DETACH);
}

/* ---------- child processes ---------- */

static void reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
}

/* fork + exec with the given stdio; returns -1 with errno set when exec failed. */
static pid_t spawn(char *const argv[], int in, int out, int err)
{
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(ep[0]);
		close(ep[1]);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		reset_signals();
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			goto fail;
		if (ep[1] != 3 && dup3(ep[1], 3, O_CLOEXEC) < 0)
			goto fail;
		close_from(4);
		execv(argv[0], argv);
	fail:;
		int e = errno;
		if (write(3, &e, sizeof e) < 0)
			_exit(127);
		_exit(127);
	}
	close(ep[1]);
	int e = 0;
	ssize_t r;
	do
		r = read(ep[0], &e, sizeof e);
	while (r < 0 && errno == EINTR);
	close(ep[0]);
	if (r == (ssize_t)sizeof e) {
		waitpid(pid, NULL, 0);
		errno = e;
		return -1;
	}
	return pid;
}

static void drain_sigfd(void)
{
	struct signalfd_siginfo si;
	while (read(sig_fd, &si, sizeof si) > 0)
		;
}

static void note_reaped(pid_t p, int st)
{
	if (p == ctr_pid && !ctr_exited) {
		ctr_exited = true;
		ctr_status = st;
		clock_gettime(CLOCK_REALTIME, &ctr_finished);
	}
}

/* Reaps every exited child (the monitor is a subreaper), noting the container's status. */
static void reap_all(void)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0)
		note_reaped(p, st);
}

/*
 * Waits for pid. With reap_others, other children are reaped meanwhile. After timeout_ms (< 0: never) pid is killed;
 * returns 0 with *status set, or -1.
 */
static int wait_pid(pid_t pid, bool reap_others, int timeout_ms, int *status)
{
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	bool killed = false;
	for (;;) {
		int st;
		pid_t p;
		while ((p = waitpid(reap_others ? -1 : pid, &st, WNOHANG)) > 0) {
			note_reaped(p, st);
			if (p == pid) {
				if (status)
					*status = st;
				return 0;
			}
		}
		if (p < 0 && errno == ECHILD)
			return -1;
		int wait_ms = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				if (killed)
					return -1;
				kill(pid, SIGKILL);
				killed = true;
				deadline = now_ms() + 2000;
				left = 2000;
			}
			wait_ms = (int)left;
		}
		struct pollfd pf = { .fd = sig_fd, .events = POLLIN };
		if (poll(&pf, 1, wait_ms) > 0)
			drain_sigfd();
	}
}

/* Runs `runtime --root R args...` with stdio on /dev/null; returns its wait status or -1. */
static int run_runtime(int timeout_ms, ...)
{
	char *argv[16];
	int n = 0;
	argv[n++] = (char *)opt.runtime;
	argv[n++] = "--root";
	argv[n++] = (char *)opt.runtime_root;
	va_list ap;
	va_start(ap, timeout_ms);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && n < 15)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	pid_t p = spawn(argv, devnull, devnull, devnull);
	int st;
	if (p < 0 || wait_pid(p, true, timeout_ms, &st) < 0)
		return -1;
	return st;
}

/* ---------- json-file log ---------- */

static char log_mem[LOG_BUF];
static struct sbuf logb = { .p = log_mem, .cap = LOG_BUF, .fd = -1 };

static void log_open(void)
{
	logb.fd = open(opt.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	struct stat st;
	logb.flushed = (logb.fd >= 0 && fstat(logb.fd, &st) == 0) ? (unsigned long long)st.st_size : 0;
}

/* FILE -> FILE.1 -> ... -> FILE.(max-1); with max-files 1 the file is truncated instead. */
static void log_rotate(void)
{
	sb_flush(&logb);
	if (opt.log_max_files <= 1) {
		if (logb.fd >= 0 && ftruncate(logb.fd, 0) == 0) {
			logb.flushed = 0;
			return;
		}
	} else {
		char src[PATH_MAX + 16], dst[PATH_MAX + 16];
		for (unsigned i = opt.log_max_files - 1; i >= 1; i--) {
			if (i == 1)
				snprintf(src, sizeof src, "%s", opt.log_path);
			else
				snprintf(src, sizeof src, "%s.%u", opt.log_path, i - 1);
			snprintf(dst, sizeof dst, "%s.%u", opt.log_path, i);
			rename(src, dst);
		}
	}
	xclose(&logb.fd);
	log_open();
}

static void log_entry(int type, const char *data, size_t n, const char *ts)
{
	if (logb.fd < 0)
		log_open();
	if (logb.fd < 0)
		return;
	if (opt.log_max_size > 0 && logb.flushed + logb.len >= opt.log_max_size)
		log_rotate();
	sb_str(&logb, "{\"log\":\"");
	json_escape(&logb, data, n);
	sb_str(&logb, type == FRAME_STDERR ? "\",\"stream\":\"stderr\",\"time\":\"" : "\",\"stream\":\"stdout\",\"time\":\"");
	sb_str(&logb, ts);
	sb_str(&logb, "\"}\n");
}

/* ---------- attach clients ---------- */

struct client {
	int fd;
	bool rd_closed, drop;
	char *q; /* unsent output: q[qoff..qlen) */
	size_t qoff, qlen, qcap;
	int64_t progress_ms; /* when the client last took output (or its queue last became non-empty) */
};

static struct client clients[MAX_CLIENTS];
static int nclients;
static int attach_fd = -1;

static void client_queue(struct client *c, const void *p, size_t n)
{
	if (c->drop || n == 0)
		return;
	size_t pending = c->qlen - c->qoff;
	if (pending == 0)
		c->progress_ms = now_ms();
	if (pending + n > CLIENT_MAX_PENDING) {
		c->drop = true;
		return;
	}
	if (c->qoff > 0 && c->qlen + n > c->qcap) {
		memmove(c->q, c->q + c->qoff, pending);
		c->qoff = 0;
		c->qlen = pending;
	}
	if (c->qlen + n > c->qcap) {
		size_t cap = c->qcap ? c->qcap : 4096;
		while (cap < c->qlen + n)
			cap *= 2;
		char *q = realloc(c->q, cap);
		if (!q) {
			c->drop = true;
			return;
		}
		c->q = q;
		c->qcap = cap;
	}
	memcpy(c->q + c->qlen, p, n);
	c->qlen += n;
}

static void client_flush(struct client *c)
{
	while (!c->drop && c->qoff < c->qlen) {
		ssize_t w = send(c->fd, c->q + c->qoff, c->qlen - c->qoff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			c->qoff += (size_t)w;
			c->progress_ms = now_ms();
		} else if (w < 0 && errno == EINTR)
			continue;
		else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		else
			c->drop = true;
	}
	if (c->qoff == c->qlen) {
		c->qoff = c->qlen = 0;
		if (c->qcap > 65536) { /* give memory back after a burst */
			free(c->q);
			c->q = NULL;
			c->qcap = 0;
		}
	}
}

static void client_frame(struct client *c, int type, const void *payload, size_t n)
{
	unsigned char h[8] = { (unsigned char)type, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
			       (unsigned char)(n >> 8), (unsigned char)n };
	const char *p = payload;
	if (c->drop)
		return;
	if (c->qoff == c->qlen) { /* nothing queued: try to send directly */
		struct iovec iov[2] = { { h, 8 }, { (void *)p, n } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t w;
		do
			w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (w < 0 && errno == EINTR);
		if (w < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				c->drop = true;
				return;
			}
			w = 0;
		}
		size_t done = (size_t)w;
		if (done < 8) {
			client_queue(c, h + done, 8 - done);
			client_queue(c, p, n);
		} else
			client_queue(c, p + (done - 8), n - (done - 8));
		return;
	}
	client_queue(c, h, 8);
	client_queue(c, p, n);
	client_flush(c);
}

static void accept_clients(void)
{
	while (attach_fd >= 0) {
		int fd = accept4(attach_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		if (nclients >= MAX_CLIENTS) {
			close(fd);
			continue;
		}
		clients[nclients++] = (struct client){ .fd = fd, .progress_ms = now_ms() };
		had_client = true;
	}
}

static void compact_clients(void)
{
	int j = 0;
	for (int i = 0; i < nclients; i++) {
		if (clients[i].drop) {
			close(clients[i].fd);
			free(clients[i].q);
		} else
			clients[j++] = clients[i];
	}
	nclients = j;
}

/* ---------- container stdio ---------- */

struct ostream {
	int fd;
	int type;
	bool eof;
	size_t len;
	char line[LOG_LINE_MAX]; /* the current, unterminated log line */
};

static struct ostream outs[2];
static int nouts;
static int master_fd = -1;  /* tty: pty master (output and input) */
static int stdin_fd = -1;   /* non-tty with --stdin: write end of the stdin pipe */
static bool stdin_eof_pending;
static char inbuf[STDIN_BUF];
static size_t in_off, in_len;
static int ctl_fd = -1;

/* Where client input goes, or -1 when it is discarded. */
static int input_target(void)
{
	if (!opt.stdin_open || ctr_exited)
		return -1;
	if (opt.tty)
		return (nouts > 0 && !outs[0].eof) ? master_fd : -1;
	return stdin_fd;
}

static void close_stdin(void)
{
	xclose(&stdin_fd);
	in_off = in_len = 0;
	stdin_eof_pending = false;
}

static void stdin_write(void)
{
	int fd = input_target();
	if (fd < 0) {
		in_off = in_len = 0;
		return;
	}
	while (in_off < in_len) {
		ssize_t w = write(fd, inbuf + in_off, in_len - in_off);
		if (w > 0)
			in_off += (size_t)w;
		else if (w < 0 && errno == EINTR)
			continue;
		else if (w < 0 && errno == EAGAIN)
			return;
		else { /* the container closed its stdin: discard input from now on */
			if (!opt.tty)
				close_stdin();
			in_off = in_len = 0;
			return;
		}
	}
	in_off = in_len = 0;
	if (stdin_eof_pending && !opt.tty)
		close_stdin();
}

static void client_read(struct client *c, short revents)
{
	static char scratch[4096];
	int target = input_target();
	char *dst = scratch;
	size_t room = sizeof scratch;
	if (target >= 0) {
		if (in_off > 0) {
			memmove(inbuf, inbuf + in_off, in_len - in_off);
			in_len -= in_off;
			in_off = 0;
		}
		dst = inbuf + in_len;
		room = sizeof inbuf - in_len;
		if (room == 0)
			return;
	}
	ssize_t r = read(c->fd, dst, room);
	if (r > 0) {
		if (target >= 0) {
			in_len += (size_t)r;
			stdin_write();
		}
		return;
	}
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	c->rd_closed = true;
	if (r < 0 || (revents & POLLHUP)) { /* gone entirely: a detach, stdin stays open */
		c->drop = true;
		return;
	}
	/* shutdown(SHUT_WR) by the client: end of its input */
	if (opt.stdin_open && !opt.tty && stdin_fd >= 0) {
		stdin_eof_pending = true;
		stdin_write();
	}
}

static void handle_output(struct ostream *s, const char *data, size_t n)
{
	for (int i = 0; i < nclients; i++)
		client_frame(&clients[i], s->type, data, n);

	struct timespec now;
	char ts[40];
	clock_gettime(CLOCK_REALTIME, &now);
	fmt_time(ts, &now);
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) + 1 : n;
		size_t room = LOG_LINE_MAX - s->len;
		bool complete = nl != NULL;
		if (take > room) {
			take = room;
			complete = false;
		}
		memcpy(s->line + s->len, data, take);
		s->len += take;
		data += take;
		n -= take;
		if (complete) {
			log_entry(s->type, s->line, s->len, ts);
			s->len = 0;
		} else if (s->len == LOG_LINE_MAX) {
			size_t cut = utf8_cut((unsigned char *)s->line, s->len);
			log_entry(s->type, s->line, cut, ts);
			memmove(s->line, s->line + cut, s->len - cut);
			s->len -= cut;
		}
	}
	sb_flush(&logb);
}

static void stream_end(struct ostream *s)
{
	if (s->len > 0) {
		struct timespec now;
		char ts[40];
		clock_gettime(CLOCK_REALTIME, &now);
		fmt_time(ts, &now);
		log_entry(s->type, s->line, s->len, ts);
		s->len = 0;
		sb_flush(&logb);
	}
	s->eof = true;
	if (s->fd != master_fd) /* the pty master is closed at the end: it is also the stdin target */
		xclose(&s->fd);
}

static void read_output(struct ostream *s)
{
	static char chunk[READ_CHUNK];
	for (int iter = 0; iter < 4 && !s->eof; iter++) { /* bounded, so one busy stream cannot starve the rest */
		ssize_t r = read(s->fd, chunk, sizeof chunk);
		if (r > 0) {
			handle_output(s, chunk, (size_t)r);
			if ((size_t)r < sizeof chunk)
				return;
		} else if (r < 0 && errno == EINTR)
			continue;
		else if (r < 0 && errno == EAGAIN)
			return;
		else
			stream_end(s); /* EOF, or EIO on a pty master once the slave side is gone */
	}
}

static void set_winsize(unsigned rows, unsigned cols)
{
	if (master_fd < 0 || rows == 0 || cols == 0 || rows > 65535 || cols > 65535)
		return;
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	ioctl(master_fd, TIOCSWINSZ, &ws);
}

static void ctl_line(char *line)
{
	char *end;
	unsigned long type = strtoul(line, &end, 10);
	if (end == line)
		return;
	if (type == 1) {
		unsigned long rows = strtoul(end, &end, 10);
		unsigned long cols = strtoul(end, &end, 10);
		set_winsize((unsigned)rows, (unsigned)cols);
	}
}

static void read_ctl(void)
{
	static char buf[256];
	static size_t len;
	for (;;) {
		ssize_t r = read(ctl_fd, buf + len, sizeof buf - 1 - len);
		if (r <= 0)
			return;
		len += (size_t)r;
		char *start = buf, *nl;
		while ((nl = memchr(start, '\n', len - (size_t)(start - buf))) != NULL) {
			*nl = 0;
			ctl_line(start);
			start = nl + 1;
		}
		len -= (size_t)(start - buf);
		memmove(buf, start, len);
		if (len == sizeof buf - 1) /* a line that long is garbage */
			len = 0;
	}
}

/* ---------- exit ---------- */

static bool read_oom(void)
{
	if (!opt.oom_file)
		return false;
	int fd = open(opt.oom_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, "oom_kill ", 9) == 0)
			return strtoull(line + 9, NULL, 10) > 0;
	return false;
}

/* exit.json; code_override >= 0 replaces the container's own status (setup failures: 125). */
static size_t exit_json(char *out, size_t cap, int code_override)
{
	int code = 125, sig = -1;
	if (code_override < 0 && ctr_exited) {
		if (WIFSIGNALED(ctr_status)) {
			sig = WTERMSIG(ctr_status);
			code = 128 + sig;
		} else
			code = WEXITSTATUS(ctr_status);
	} else if (code_override >= 0)
		code = code_override;
	struct timespec t = ctr_finished;
	if (!ctr_exited)
		clock_gettime(CLOCK_REALTIME, &t);
	char ts[40], sigs[16] = "null";
	fmt_time(ts, &t);
	if (sig >= 0)
		snprintf(sigs, sizeof sigs, "%d", sig);
	int n = snprintf(out, cap, "{\"exitCode\":%d,\"oomKilled\":%s,\"signal\":%s,\"finishedAt\":\"%s\"}", code,
			 read_oom() ? "true" : "false", sigs, ts);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* true when the client is over the high water mark and has taken nothing for CLIENT_STALL_MS: drop it. */
static bool client_stalled(struct client *c, int64_t now)
{
	return c->qlen - c->qoff > CLIENT_HIGH_WATER && now - c->progress_ms >= CLIENT_STALL_MS;
}

/* Lets clients take what is queued for them: as long as they make progress, for FLUSH_MS at most. */
static void flush_clients(void)
{
	int64_t deadline = now_ms() + FLUSH_MS;
	for (;;) {
		struct pollfd pfd[MAX_CLIENTS];
		int n = 0;
		int64_t now = now_ms();
		for (int i = 0; i < nclients; i++) {
			struct client *c = &clients[i];
			client_flush(c);
			if (c->qoff < c->qlen && now - c->progress_ms >= CLIENT_STALL_MS)
				c->drop = true;
			if (!c->drop && c->qoff < c->qlen)
				pfd[n++] = (struct pollfd){ .fd = c->fd, .events = POLLOUT };
		}
		compact_clients();
		if (n == 0 || now >= deadline)
			break;
		poll(pfd, (nfds_t)n, 200);
	}
	for (int i = 0; i < nclients; i++)
		clients[i].drop = true;
	compact_clients();
}

static _Noreturn void finish(int code_override)
{
	close_stdin();
	for (int i = 0; i < nouts; i++)
		if (!outs[i].eof)
			stream_end(&outs[i]);
	xclose(&master_fd);
	sb_flush(&logb);
	xclose(&logb.fd);

	char json[256];
	size_t n = exit_json(json, sizeof json, code_override);
	char file[260];
	memcpy(file, json, n);
	file[n] = '\n';
	atomic_write("exit.json", file, n + 1, !opt.remove_dir); /* with --remove-dir it is about to go */

	accept_clients();
	for (int i = 0; i < nclients; i++)
		client_frame(&clients[i], FRAME_EXIT, json, n);
	xclose(&attach_fd);
	flush_clients();
	xclose(&ctl_fd);

	unmount_rootfs();
	/*
	 * --remove-dir: move the container's directory out of berth's sight first (one rename), so a waiting `run --rm`
	 * returns now; the cgroup and state cleanup and the recursive removal follow. Only a directory named like a
	 * container id is touched.
	 */
	char trash[PATH_MAX] = "";
	const char *base = strrchr(opt.dir, '/');
	/* A `restart` in progress (berth's "restarting" marker) keeps the container: its next start follows. */
	bool restarting = faccessat(dir_fd, "restarting", F_OK, 0) == 0;
	if (opt.remove_dir && !restarting && base && strlen(base + 1) == 64 && strspn(base + 1, "0123456789abcdef") == 64) {
		snprintf(trash, sizeof trash, "%.*s/.removing-%s", (int)(base - opt.dir), opt.dir, base + 1);
		if (rename(opt.dir, trash) < 0)
			snprintf(trash, sizeof trash, "%s", opt.dir);
	}
	delete_container();
	remove_runtime_files();
	reap_all();
	if (trash[0]) {
		xclose(&dir_fd);
		remove_tree_at(AT_FDCWD, trash);
	}

	if (!opt.exit_command)
		exit(0);
	xclose(&sig_fd);
	prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
	reset_signals();
	close_from(3);
	execv(opt.exit_command, opt.exit_argv);
	_exit(127);
}

/*
 * A failure after the container was created: kill it, then report through the sync fd if still open (after the
 * cleanup, so berth finds it done), else through exit.json with exit code 125.
 */
static _Noreturn void fatal_after_create(const char *msg)
{
	run_runtime(RUNTIME_KILL_MS, "kill", opt.id, "KILL", (char *)NULL);
	if (ctr_pid > 0 && !ctr_exited) {
		kill(ctr_pid, SIGKILL);
		wait_pid(ctr_pid, true, 5000, NULL);
	}
	if (sync_fd < 0)
		finish(125);
	run_runtime(RUNTIME_DELETE_MS, "delete", "--force", opt.id, (char *)NULL);
	unmount_rootfs();
	remove_runtime_files();
	reap_all();
	report_error(msg);
	exit(1);
}

static _Noreturn void fatal_after_create_errno(const char *what)
{
	fatal_after_create(with_errno(what));
}

/* A failure before anything was created. */
static _Noreturn void fatal_setup(const char *what)
{
	const char *msg = with_errno(what);
	unmount_rootfs();
	if (dir_fd >= 0)
		remove_runtime_files();
	report_error(msg);
	exit(1);
}

/* ---------- runtime create ---------- */

/* runc's error text, last line, with logrus' `time=... level=error msg="..."` reduced to the message. */
static void runtime_message(const char *text, size_t n, char *out, size_t cap)
{
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	size_t start = n;
	while (start > 0 && text[start - 1] != '\n')
		start--;
	const char *line = text + start, *end = text + n;
	size_t o = 0;
	const char *m = NULL;
	for (const char *p = line; p + 4 <= end; p++)
		if (memcmp(p, "msg=", 4) == 0 && (p == line || p[-1] == ' ')) {
			m = p + 4;
			break;
		}
	if (m && m < end && *m == '"') { /* Go-quoted string */
		for (const char *p = m + 1; p < end && *p != '"' && o + 1 < cap; p++) {
			if (*p == '\\' && p + 1 < end) {
				p++;
				out[o++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
			} else
				out[o++] = *p;
		}
	} else if (m) {
		for (const char *p = m; p < end && *p != ' ' && o + 1 < cap; p++)
			out[o++] = *p;
	} else {
		for (const char *p = line; p < end && o + 1 < cap; p++)
			out[o++] = *p;
	}
	out[o] = 0;
}

/* Receives the pty master that runc sends over the console socket; -2 means try again later. */
static int recv_fd(int sock)
{
	char name[512];
	struct iovec iov = { name, sizeof name };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (r < 0)
		return (errno == EAGAIN || errno == EINTR) ? -2 : -1;
	int fd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfds; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
			if (fd < 0)
				fd = f;
			else
				close(f);
		}
	}
	return fd;
}

static void append_tail(char *buf, size_t *len, const char *p, size_t n)
{
	if (n >= ERR_TEXT_MAX) {
		p += n - (ERR_TEXT_MAX - 1);
		n = ERR_TEXT_MAX - 1;
	}
	if (*len + n >= ERR_TEXT_MAX) {
		size_t drop = *len + n - (ERR_TEXT_MAX - 1);
		memmove(buf, buf + drop, *len - drop);
		*len -= drop;
	}
	memcpy(buf + *len, p, n);
	*len += n;
}

/* Reads what is there now; returns false at EOF or error. */
static bool read_some(int fd, char *err, size_t *errlen)
{
	char tmp[4096];
	for (;;) {
		ssize_t r = read(fd, tmp, sizeof tmp);
		if (r > 0) {
			if (err)
				append_tail(err, errlen, tmp, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 && errno == EAGAIN;
	}
}

/* Listens on CTRDIR/name for the runtime's pty master; arg gets the path for --console-socket. -1 with errno. */
static int console_listen(const char *name, char *arg, size_t cap)
{
	int fd = unix_listen(name, 1);
	if (fd < 0)
		return -1;
	struct sockaddr_un sa;
	ctr_sockaddr(&sa, name, getpid());
	snprintf(arg, cap, "%s", sa.sun_path);
	return fd;
}

/* One step of taking the pty master into master_fd, never blocking: accept the runtime's connection, receive. */
static void console_step(int clisten, int *cconn)
{
	if (*cconn < 0)
		*cconn = accept4(clisten, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (*cconn >= 0) {
		int fd = recv_fd(*cconn);
		if (fd >= 0)
			master_fd = fd;
		else if (fd == -1)
			xclose(cconn);
	}
}

/*
 * A runtime invocation (create, run, exec) until it exits: its stderr is error text, and with a console socket the
 * pty master arrives meanwhile (into master_fd).
 */
struct runtime_call {
	pid_t pid;
	int err_fd; /* read end of the runtime's stderr, non-blocking */
	bool err_is_ctr; /* err_fd is already the container's stderr: read only after a failure of the runtime */
	int out_fd; /* a pipe kept drained while the runtime runs (-1: none) */
	const char *console; /* CTRDIR/console is the console socket (NULL: none) */
	int clisten, cconn; /* its listening socket and the runtime's connection to it (-1: none) */
	int status; /* the runtime's wait status */
	bool err_open, out_open;
	char errtext[ERR_TEXT_MAX];
	size_t errlen;
};

/* Waits for the runtime to exit, collecting its error text and the pty master; -1 (errno set) when poll failed. */
static int runtime_wait(struct runtime_call *w)
{
	w->status = 0;
	w->errlen = 0;
	w->err_open = true;
	w->out_open = w->out_fd >= 0;
	for (;;) {
		pid_t p = waitpid(w->pid, &w->status, WNOHANG);
		if (p == w->pid || (p < 0 && errno == ECHILD))
			return 0;
		struct pollfd pfd[4];
		int np = 0;
		pfd[np++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		if (w->err_open && !w->err_is_ctr)
			pfd[np++] = (struct pollfd){ .fd = w->err_fd, .events = POLLIN };
		if (w->out_open)
			pfd[np++] = (struct pollfd){ .fd = w->out_fd, .events = POLLIN };
		if (w->clisten >= 0 && master_fd < 0)
			pfd[np++] = (struct pollfd){ .fd = w->cconn >= 0 ? w->cconn : w->clisten, .events = POLLIN };
		if (poll(pfd, (nfds_t)np, 1000) < 0 && errno != EINTR)
			return -1;
		drain_sigfd();
		if (w->err_open && !w->err_is_ctr)
			w->err_open = read_some(w->err_fd, w->errtext, &w->errlen);
		if (w->out_open) /* runc prints nothing there; the container cannot yet */
			w->out_open = read_some(w->out_fd, NULL, NULL);
		if (w->clisten >= 0 && master_fd < 0)
			console_step(w->clisten, &w->cconn);
	}
}

/*
 * After runtime_wait: the rest of the error text, a pty master sent just before the exit, then the console socket
 * is closed and removed. Returns whether the runtime failed.
 */
static bool runtime_wait_end(struct runtime_call *w)
{
	bool failed = !WIFEXITED(w->status) || WEXITSTATUS(w->status) != 0;
	if (w->err_open && (failed || !w->err_is_ctr))
		read_some(w->err_fd, w->errtext, &w->errlen);
	if (w->clisten >= 0 && master_fd < 0) /* runc sent it before exiting: it is waiting in the socket */
		console_step(w->clisten, &w->cconn);
	xclose(&w->cconn);
	xclose(&w->clisten);
	if (w->console)
		unlinkat(dir_fd, w->console, 0);
	return failed;
}

static void create_container(void)
{
	int in_r = -1, in_w = -1, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	struct runtime_call rt = { .clisten = -1, .cconn = -1 };
	char console_arg[sizeof(((struct sockaddr_un *)0)->sun_path)];

	if (pipe2(err_p, O_CLOEXEC) < 0)
		fatal_setup("pipe");
	if (opt.tty) {
		rt.console = "console.sock";
		rt.clisten = console_listen(rt.console, console_arg, sizeof console_arg);
		if (rt.clisten < 0)
			fatal_setup("console socket");
	} else {
		if (pipe2(out_p, O_CLOEXEC) < 0)
			fatal_setup("pipe");
		if (opt.stdin_open) {
			int p[2];
			if (pipe2(p, O_CLOEXEC) < 0)
				fatal_setup("pipe");
			in_r = p[0];
			in_w = p[1];
		}
	}

	char pidfile[PATH_MAX];
	snprintf(pidfile, sizeof pidfile, "%s/pid", opt.dir);
	char *argv[16];
	int n = 0;
	argv[n++] = (char *)opt.runtime;
	argv[n++] = "--root";
	argv[n++] = (char *)opt.runtime_root;
	if (opt.start) {
		argv[n++] = "run";
		argv[n++] = "--detach";
	} else
		argv[n++] = "create";
	argv[n++] = "--bundle";
	argv[n++] = (char *)opt.bundle;
	argv[n++] = "--pid-file";
	argv[n++] = pidfile;
	if (opt.tty) {
		argv[n++] = "--console-socket";
		argv[n++] = console_arg;
	}
	argv[n++] = (char *)opt.id;
	argv[n] = NULL;

	pid_t rp = opt.tty ? spawn(argv, devnull, devnull, err_p[1])
			   : spawn(argv, in_r >= 0 ? in_r : devnull, out_p[1], err_p[1]);
	if (rp < 0) {
		char what[PATH_MAX + 32];
		snprintf(what, sizeof what, "cannot run %s", opt.runtime);
		fatal_setup(what);
	}
	xclose(&in_r);
	xclose(&out_p[1]);
	xclose(&err_p[1]);
	set_nonblock(err_p[0]);
	if (out_p[0] >= 0)
		set_nonblock(out_p[0]);

	/*
	 * Until runc exits, its stderr is error text; in tty mode the pty master arrives meanwhile. With --start the
	 * container may already write: its output stays in the pipes for the main loop (and on success, non-tty, the
	 * stderr pipe belongs to the running container: it is left alone).
	 */
	rt.pid = rp;
	rt.err_fd = err_p[0];
	rt.err_is_ctr = opt.start && !opt.tty;
	rt.out_fd = opt.start ? -1 : out_p[0];
	if (runtime_wait(&rt) < 0)
		fatal_setup("poll");
	if (runtime_wait_end(&rt)) {
		char msg[ERR_TEXT_MAX];
		runtime_message(rt.errtext, rt.errlen, msg, sizeof msg);
		int st = rt.status;
		if (msg[0] == 0) {
			if (WIFSIGNALED(st))
				snprintf(msg, sizeof msg, "%s create: killed by signal %d", opt.runtime, WTERMSIG(st));
			else
				snprintf(msg, sizeof msg, "%s create: exit status %d", opt.runtime, WEXITSTATUS(st));
		}
		run_runtime(RUNTIME_DELETE_MS, "delete", "--force", opt.id, (char *)NULL);
		unmount_rootfs();
		remove_runtime_files();
		reap_all();
		report_error(msg);
		exit(1);
	}

	/* From here on, failures must also remove the created container. */
	if (opt.tty) {
		xclose(&err_p[0]);
		if (master_fd < 0)
			fatal_after_create("the runtime did not send the console of the container");
		set_nonblock(master_fd);
		if (opt.have_size)
			set_winsize(opt.rows, opt.cols);
		outs[nouts++] = (struct ostream){ .fd = master_fd, .type = FRAME_STDOUT };
	} else {
		outs[nouts++] = (struct ostream){ .fd = out_p[0], .type = FRAME_STDOUT };
		outs[nouts++] = (struct ostream){ .fd = err_p[0], .type = FRAME_STDERR };
		stdin_fd = in_w;
		if (stdin_fd >= 0)
			set_nonblock(stdin_fd);
	}
}

/* The container pid, which must be our child (via the subreaper) for its exit status to reach us. */
static pid_t read_container_pid(void)
{
	char buf[64];
	int fd = openat(dir_fd, "pid", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	long pid = strtol(buf, NULL, 10);
	if (pid <= 0)
		return -1;

	char path[64], stat[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, stat, sizeof stat - 1);
	close(fd);
	if (n <= 0)
		return -1;
	stat[n] = 0;
	char *p = strrchr(stat, ')'), state;
	int ppid;
	if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2 || ppid != getpid())
		return -1;
	return (pid_t)pid;
}

static void after_create(void)
{
	pid_t pid = read_container_pid();
	if (pid <= 0)
		fatal_after_create("cannot read the container's pid (or it is not a child of the monitor)");
	ctr_pid = pid;

	attach_fd = unix_listen("attach.sock", 128);
	if (attach_fd < 0)
		fatal_after_create_errno("cannot create attach.sock");
	unlinkat(dir_fd, "ctl", 0);
	if (mkfifoat(dir_fd, "ctl", 0600) < 0)
		fatal_after_create_errno("cannot create the ctl fifo");
	ctl_fd = openat(dir_fd, "ctl", O_RDWR | O_NONBLOCK | O_CLOEXEC); /* O_RDWR: never sees EOF */
	if (ctl_fd < 0)
		fatal_after_create_errno("cannot open the ctl fifo");

	char line[64];
	snprintf(line, sizeof line, "{\"pid\":%d}\n", (int)pid);
	sync_send(line);
}

/* ---------- main loop ---------- */

static bool outputs_done(void)
{
	for (int i = 0; i < nouts; i++)
		if (!outs[i].eof)
			return false;
	return true;
}

enum tag { T_SIG, T_ATTACH, T_CTL, T_OUT, T_STDIN, T_CLIENT };

static void main_loop(void)
{
	static struct pollfd pfd[8 + MAX_CLIENTS];
	static unsigned char tag[8 + MAX_CLIENTS];
	static short idx[8 + MAX_CLIENTS];
	int64_t drain_deadline = -1;
	int64_t attach_deadline = opt.attach_wait_ms > 0 ? now_ms() + opt.attach_wait_ms : -1;

	reap_all();
	for (;;) {
		bool waiting = attach_deadline >= 0 && !had_client && now_ms() < attach_deadline;
		if (ctr_exited && drain_deadline < 0 && !waiting) {
			drain_deadline = now_ms() + DRAIN_MS;
			close_stdin();
		}
		int timeout = -1;
		if (drain_deadline >= 0) {
			int64_t left = drain_deadline - now_ms();
			if (outputs_done() || left <= 0)
				return;
			timeout = (int)left;
		}
		/*
		 * Backpressure: while a client is behind by more than CLIENT_HIGH_WATER, container output is not read (the
		 * container blocks, as with Docker), so attached clients get all of it. A client that takes nothing for
		 * CLIENT_STALL_MS is dropped, so a stuck client cannot hold the container. Not while draining: the
		 * container is gone and what is left in its pipes is bounded.
		 */
		bool held = waiting;
		int64_t now = now_ms();
		if (waiting) {
			int left = (int)(attach_deadline - now);
			if (timeout < 0 || left < timeout)
				timeout = left > 0 ? left : 0;
		}
		for (int i = 0; i < nclients; i++) {
			struct client *c = &clients[i];
			if (client_stalled(c, now))
				c->drop = true;
			else if (c->qlen - c->qoff > CLIENT_HIGH_WATER && drain_deadline < 0) {
				held = true;
				int left = (int)(c->progress_ms + CLIENT_STALL_MS - now);
				if (timeout < 0 || left < timeout)
					timeout = left > 0 ? left : 0;
			}
		}
		compact_clients();

		int n = 0;
		bool input_pending = in_off < in_len && input_target() >= 0;
		pfd[n] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		tag[n++] = T_SIG;
		pfd[n] = (struct pollfd){ .fd = attach_fd, .events = POLLIN };
		tag[n++] = T_ATTACH;
		pfd[n] = (struct pollfd){ .fd = ctl_fd, .events = POLLIN };
		tag[n++] = T_CTL;
		for (int i = 0; i < nouts; i++) {
			if (outs[i].eof)
				continue;
			short ev = held ? 0 : POLLIN;
			if (opt.tty && input_pending)
				ev |= POLLOUT;
			if (!ev)
				continue;
			pfd[n] = (struct pollfd){ .fd = outs[i].fd, .events = ev };
			tag[n] = T_OUT;
			idx[n++] = (short)i;
		}
		if (!opt.tty && input_pending) {
			pfd[n] = (struct pollfd){ .fd = stdin_fd, .events = POLLOUT };
			tag[n++] = T_STDIN;
		}
		bool input_room = input_target() < 0 || in_len - in_off < sizeof inbuf;
		for (int i = 0; i < nclients; i++) {
			struct client *c = &clients[i];
			short ev = 0;
			if (!c->rd_closed && input_room)
				ev |= POLLIN;
			if (c->qoff < c->qlen)
				ev |= POLLOUT;
			pfd[n] = (struct pollfd){ .fd = c->fd, .events = ev };
			tag[n] = T_CLIENT;
			idx[n++] = (short)i;
		}

		int r = poll(pfd, (nfds_t)n, timeout);
		if (r < 0) {
			if (errno == EINTR || errno == ENOMEM || errno == EAGAIN)
				continue;
			fatal_after_create_errno("poll");
		}
		for (int k = 0; k < n; k++) {
			short re = pfd[k].revents;
			if (!re)
				continue;
			switch (tag[k]) {
			case T_SIG:
				drain_sigfd();
				reap_all();
				break;
			case T_ATTACH:
				accept_clients();
				break;
			case T_CTL:
				read_ctl();
				break;
			case T_OUT:
				if (re & POLLOUT)
					stdin_write();
				if (re & (POLLIN | POLLHUP | POLLERR))
					read_output(&outs[idx[k]]);
				break;
			case T_STDIN:
				if (re & (POLLERR | POLLHUP))
					close_stdin();
				else
					stdin_write();
				break;
			case T_CLIENT: {
				struct client *c = &clients[idx[k]];
				if (re & POLLOUT)
					client_flush(c);
				if (re & POLLIN)
					client_read(c, re);
				else if (re & (POLLHUP | POLLERR))
					c->drop = true;
				break;
			}
			}
		}
		compact_clients();
	}
}

/* ---------- exec --tty without a client terminal (--exec-tty) ---------- */

static _Noreturn void usage(const char *msg);

static int wait_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
}

static _Noreturn void exec_fail(const char *msg)
{
	if (sync_fd < 0) { /* nobody reads a sync fd: say it on stderr */
		write_all(2, msg, strlen(msg));
		write_all(2, "\n", 1);
	}
	report_error(msg);
	exit(1);
}

static _Noreturn void exec_fail_errno(const char *what)
{
	exec_fail(with_errno(what));
}

/* Writes all of it to stdout, waiting while stdout is full (also when the caller left it non-blocking). */
static int write_out(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w >= 0) {
			p += w;
			n -= (size_t)w;
		} else if (errno == EAGAIN) {
			struct pollfd pf = { .fd = 1, .events = POLLOUT };
			poll(&pf, 1, -1);
		} else if (errno != EINTR)
			return -1;
	}
	return 0;
}

static bool exec_detached; /* --stdin relay after SIGUSR1: output is discarded */

/* Copies what the pty master has to stdout; false once the output ended (EIO: no slave left) or stdout is gone. */
static bool exec_pump(bool *stdout_gone)
{
	static char chunk[READ_CHUNK];
	for (int iter = 0; iter < 16; iter++) { /* bounded: the drain deadline is checked between calls */
		ssize_t r = read(master_fd, chunk, sizeof chunk);
		if (r > 0) {
			if (!exec_detached && write_out(chunk, (size_t)r) < 0) {
				*stdout_gone = true;
				return false;
			}
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 && errno == EAGAIN;
	}
	return true;
}

/* The size of the client's terminal (the first of our stdio that is one) onto the process's. */
static void exec_copy_winsize(void)
{
	static const int order[] = { 1, 2, 0 };
	struct winsize ws;
	for (int i = 0; i < 3; i++) {
		if (ioctl(order[i], TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
			ioctl(master_fd, TIOCSWINSZ, &ws);
			return;
		}
	}
}

/* SIGUSR1 of a --stdin relay: let go of the client's stdio and terminal, keep the master until the process ends. */
static void exec_detach(bool *in_open)
{
	if (exec_detached)
		return;
	exec_detached = true;
	*in_open = false;
	dup2(devnull, 0);
	dup2(devnull, 1);
	dup2(devnull, 2);
	setsid();
}

static _Noreturn void exec_tty_main(int argc, char **argv)
{
	const char *process = NULL, *pid_file = NULL, *console_name = NULL;
	bool detach = false, with_stdin = false;
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--sync-fd") == 0) {
			char *end;
			long fd = strtol(argv[i + 1], &end, 10);
			if (*end == 0 && fd >= 3 && fd < INT_MAX && fcntl((int)fd, F_GETFD) >= 0)
				sync_fd = (int)fd;
		}
	if (sync_fd >= 0)
		fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
	for (int i = 2; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--detach") == 0 || strcmp(a, "--stdin") == 0) {
			*(a[2] == 'd' ? &detach : &with_stdin) = true;
			i--;
			continue;
		}
		if (!v)
			usage("missing value");
		if (strcmp(a, "--runtime") == 0)
			opt.runtime = v;
		else if (strcmp(a, "--runtime-root") == 0)
			opt.runtime_root = v;
		else if (strcmp(a, "--id") == 0)
			opt.id = v;
		else if (strcmp(a, "--dir") == 0)
			opt.dir = v;
		else if (strcmp(a, "--process") == 0)
			process = v;
		else if (strcmp(a, "--pid-file") == 0)
			pid_file = v;
		else if (strcmp(a, "--console-name") == 0)
			console_name = v;
		else if (strcmp(a, "--sync-fd") != 0) {
			char m[256];
			snprintf(m, sizeof m, "unknown flag: %.200s", a);
			usage(m);
		}
	}
	if (!opt.runtime || !opt.runtime_root || !opt.id || !opt.dir || !process || !pid_file || !console_name)
		usage("--exec-tty needs --runtime, --runtime-root, --id, --dir, --process, --pid-file and --console-name");
	if (strchr(console_name, '/'))
		usage("--console-name must be a plain file name");
	if (detach && with_stdin)
		usage("--stdin and --detach exclude each other");

	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		exec_fail_errno("open /dev/null");
	if (detach) { /* the caller's child exits now; the relay lives on in its own session until the process ends */
		pid_t p = fork();
		if (p < 0)
			exec_fail_errno("fork");
		if (p > 0)
			_exit(0);
		setsid();
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
	}
	/* The exec'd process is orphaned when runc exits: as subreaper we get it, and its exit status. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		exec_fail_errno("prctl(PR_SET_CHILD_SUBREAPER)");
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (with_stdin) {
		sigaddset(&chld, SIGWINCH);
		sigaddset(&chld, SIGUSR1);
	}
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		exec_fail_errno("signalfd");
	dir_fd = open(opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		exec_fail_errno(opt.dir);

	struct runtime_call rt = { .out_fd = -1, .console = console_name, .cconn = -1 };
	char console_arg[sizeof(((struct sockaddr_un *)0)->sun_path)];
	rt.clisten = console_listen(console_name, console_arg, sizeof console_arg);
	if (rt.clisten < 0)
		exec_fail_errno("console socket");
	int err_p[2];
	if (pipe2(err_p, O_CLOEXEC) < 0) {
		unlinkat(dir_fd, console_name, 0);
		exec_fail_errno("pipe");
	}
	char *rargv[] = { (char *)opt.runtime, "--root", (char *)opt.runtime_root, "exec", "--detach", "--tty",
			  "--console-socket", console_arg, "--pid-file", (char *)pid_file, "--process", (char *)process,
			  (char *)opt.id, NULL };
	pid_t rp = spawn(rargv, devnull, devnull, err_p[1]);
	if (rp < 0) {
		char what[PATH_MAX + 32];
		snprintf(what, sizeof what, "cannot run %s", opt.runtime);
		unlinkat(dir_fd, console_name, 0);
		exec_fail_errno(what);
	}
	xclose(&err_p[1]);
	set_nonblock(err_p[0]);

	/* Until runc exits, its stderr is error text; the pty master arrives on the console socket meanwhile. */
	rt.pid = rp;
	rt.err_fd = err_p[0];
	runtime_wait(&rt); /* a failed poll just ends the wait */
	bool failed = runtime_wait_end(&rt);
	xclose(&err_p[0]);
	if (failed) {
		char msg[ERR_TEXT_MAX];
		runtime_message(rt.errtext, rt.errlen, msg, sizeof msg);
		if (msg[0] == 0)
			snprintf(msg, sizeof msg, "%s exec: exit status %d", opt.runtime, wait_code(rt.status));
		exec_fail(msg);
	}

	/* The process: runc's pid file, and our child by now (orphaned to us, the subreaper, when runc exited). */
	pid_t pid = -1;
	{
		char buf[64];
		int fd = open(pid_file, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			pid = (pid_t)strtol(buf, NULL, 10);
		}
	}
	char pidline[64];
	snprintf(pidline, sizeof pidline, "/proc/%d/stat", (int)pid);
	bool ours = false;
	if (pid > 0) {
		char stat[512];
		int fd = open(pidline, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, stat, sizeof stat - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			stat[n] = 0;
			char *p = strrchr(stat, ')'), state;
			int ppid;
			ours = p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid();
		}
	}
	if (!ours || master_fd < 0) {
		if (pid > 0)
			kill(pid, SIGKILL);
		exec_fail(master_fd < 0 ? "the runtime did not send the console of the process"
					: "cannot read the exec'd process's pid (or it is not a child of berth-monitor)");
	}
	set_nonblock(master_fd);
	if (with_stdin) {
		exec_copy_winsize();
		set_nonblock(0);
	}
	snprintf(pidline, sizeof pidline, "{\"pid\":%d}\n", (int)pid);
	sync_send(pidline);

	/* Output until the process exited and its output ended; after the exit, at most DRAIN_MS more. */
	bool exited = false, out_open = true, stdout_gone = false, in_open = with_stdin;
	int status = 0;
	int64_t drain_deadline = -1;
	static char input[STDIN_BUF];
	size_t in_at = 0, in_end = 0; /* input read from stdin, not yet written to the master */
	while (!stdout_gone && (!exited || out_open)) {
		int timeout = -1;
		if (drain_deadline >= 0) {
			int64_t left = drain_deadline - now_ms();
			if (left <= 0)
				break;
			timeout = (int)left;
		}
		struct pollfd pfd[3] = { { .fd = sig_fd, .events = POLLIN }, { .fd = -1 }, { .fd = -1 } };
		if (out_open || in_at < in_end)
			pfd[1] = (struct pollfd){ .fd = master_fd, .events = (short)((out_open ? POLLIN : 0) | (in_at < in_end ? POLLOUT : 0)) };
		if (in_open && in_at == in_end)
			pfd[2] = (struct pollfd){ .fd = 0, .events = POLLIN };
		if (poll(pfd, 3, timeout) < 0 && errno != EINTR)
			break;
		if (out_open)
			out_open = exec_pump(&stdout_gone);
		if (in_open && in_at == in_end && pfd[2].revents) {
			ssize_t r = read(0, input, sizeof input);
			if (r > 0) {
				in_at = 0;
				in_end = (size_t)r;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR))
				in_open = false; /* the client's input ended: the process's terminal stays as it is */
		}
		while (in_at < in_end) {
			ssize_t w = write(master_fd, input + in_at, in_end - in_at);
			if (w > 0)
				in_at += (size_t)w;
			else if (w < 0 && errno == EINTR)
				continue;
			else if (w < 0 && errno == EAGAIN)
				break;
			else /* the terminal is gone (the process ended): nobody takes input any more */
				in_at = in_end;
		}
		struct signalfd_siginfo si;
		while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
			if (si.ssi_signo == SIGWINCH && !exec_detached)
				exec_copy_winsize();
			else if (si.ssi_signo == SIGUSR1)
				exec_detach(&in_open);
		}
		if (exec_detached)
			in_at = in_end = 0;
		int wst;
		pid_t p;
		while ((p = waitpid(-1, &wst, WNOHANG)) > 0)
			if (p == pid) {
				exited = true;
				status = wst;
				drain_deadline = now_ms() + DRAIN_MS;
			}
		if (p < 0 && errno == ECHILD && !exited)
			break; /* cannot happen: the process is our child */
	}
	if (out_open && !stdout_gone)
		exec_pump(&stdout_gone);
	xclose(&master_fd); /* a process still running (stdout gone) sees its terminal hang up */
	exit(exited ? wait_code(status) : 1);
}

/* ---------- startup ---------- */

static _Noreturn void usage(const char *msg)
{
	char line[512];
	snprintf(line, sizeof line, "berth-monitor: %s\n", msg);
	if (write(2, line, strlen(line)) < 0) { /* nothing to do */
	}
	line[strlen(line) - 1] = 0;
	report_error(line + strlen("berth-monitor: "));
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	opt.exit_argv = calloc((size_t)argc + 2, sizeof(char *));
	if (!opt.exit_argv)
		usage("out of memory");
	/* find the sync fd first so that usage errors can be reported through it */
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--sync-fd") == 0) {
			char *end;
			long fd = strtol(argv[i + 1], &end, 10);
			if (*end == 0 && fd >= 3 && fd < INT_MAX && fcntl((int)fd, F_GETFD) >= 0)
				sync_fd = (int)fd;
		}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--tty") == 0) {
			opt.tty = true;
			continue;
		}
		if (strcmp(a, "--stdin") == 0) {
			opt.stdin_open = true;
			continue;
		}
		if (strcmp(a, "--start") == 0) {
			opt.start = true;
			continue;
		}
		if (strcmp(a, "--remove-dir") == 0) {
			opt.remove_dir = true;
			continue;
		}
		if (i + 1 >= argc) {
			char m[256];
			snprintf(m, sizeof m, "unknown flag or missing value: %.200s", a);
			usage(m);
		}
		const char *v = argv[++i];
		char *end = NULL;
		if (strcmp(a, "--runtime") == 0)
			opt.runtime = v;
		else if (strcmp(a, "--runtime-root") == 0)
			opt.runtime_root = v;
		else if (strcmp(a, "--id") == 0)
			opt.id = v;
		else if (strcmp(a, "--bundle") == 0)
			opt.bundle = v;
		else if (strcmp(a, "--dir") == 0)
			opt.dir = v;
		else if (strcmp(a, "--log-path") == 0)
			opt.log_path = v;
		else if (strcmp(a, "--oom-file") == 0)
			opt.oom_file = v;
		else if (strcmp(a, "--rootfs-mount") == 0)
			opt.rootfs_mount = v;
		else if (strcmp(a, "--cgroup-path") == 0) {
			if (v[0] != '/' || strstr(v, ".."))
				usage("--cgroup-path must be an absolute cgroup path without '..'");
			opt.cgroup_path = v;
		}
		else if (strcmp(a, "--attach-wait") == 0) {
			long ms = strtol(v, &end, 10);
			if (*v == '-' || *end || ms > 600000)
				usage("invalid --attach-wait");
			opt.attach_wait_ms = (int)ms;
		} else if (strcmp(a, "--exit-command") == 0)
			opt.exit_command = v;
		else if (strcmp(a, "--exit-arg") == 0)
			opt.exit_argv[1 + opt.n_exit_args++] = (char *)v;
		else if (strcmp(a, "--sync-fd") == 0) {
			if (sync_fd < 0)
				usage("--sync-fd must name an open descriptor >= 3");
		} else if (strcmp(a, "--log-max-size") == 0) {
			opt.log_max_size = strtoull(v, &end, 10);
			if (*v == '-' || *end)
				usage("invalid --log-max-size");
		} else if (strcmp(a, "--log-max-files") == 0) {
			unsigned long n = strtoul(v, &end, 10);
			if (*v == '-' || *end || n < 1 || n > 1000)
				usage("invalid --log-max-files");
			opt.log_max_files = (unsigned)n;
		} else if (strcmp(a, "--tty-size") == 0) {
			unsigned long r = strtoul(v, &end, 10), c = 0;
			if (end != v && *end == 'x')
				c = strtoul(end + 1, &end, 10);
			if (*end || r == 0 || c == 0 || r > 65535 || c > 65535)
				usage("invalid --tty-size (want ROWSxCOLS)");
			opt.rows = (unsigned short)r;
			opt.cols = (unsigned short)c;
			opt.have_size = true;
		} else {
			char m[256];
			snprintf(m, sizeof m, "unknown flag: %.200s", a);
			usage(m);
		}
	}
	const char *req[][2] = { { "--runtime", opt.runtime }, { "--runtime-root", opt.runtime_root },
				 { "--id", opt.id },	   { "--bundle", opt.bundle },
				 { "--dir", opt.dir },	   { "--log-path", opt.log_path } };
	for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
		char m[128];
		if (!req[i][1] || !*req[i][1]) {
			snprintf(m, sizeof m, "missing %s", req[i][0]);
			usage(m);
		}
		if (i != 2 && req[i][1][0] != '/') {
			snprintf(m, sizeof m, "%s must be an absolute path", req[i][0]);
			usage(m);
		}
	}
	if (opt.exit_command && opt.exit_command[0] != '/')
		usage("--exit-command must be an absolute path");
	if (opt.n_exit_args > 0 && !opt.exit_command)
		usage("--exit-arg needs --exit-command");
	opt.exit_argv[0] = (char *)opt.exit_command;
}

/* Double fork + setsid: the monitor is nobody's child but init's (or a subreaper's), in its own session. */
static void daemonize(void)
{
	pid_t p = fork();
	if (p < 0)
		fatal_setup("fork");
	if (p > 0)
		_exit(0);
	setsid();
	p = fork();
	if (p < 0)
		fatal_setup("fork");
	if (p > 0)
		_exit(0);

	if (sync_fd > 3)
		close_range(3, (unsigned)sync_fd - 1, 0);
	if (sync_fd >= 3) {
		close_from(sync_fd + 1);
		fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
	} else
		close_from(3);
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (chdir("/") < 0) { /* cannot fail for / */
	}
	umask(022);
}

static void setup(void)
{
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		fatal_setup("open /dev/null");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fatal_setup("prctl(PR_SET_CHILD_SUBREAPER)");
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigaction(SIGHUP, &ign, NULL);
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGTERM, &ign, NULL);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		fatal_setup("signalfd");

	dir_fd = open(opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		fatal_setup(opt.dir);
	unlinkat(dir_fd, "exit.json", 0); /* stale from an earlier run of this container */
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%d", (int)getpid());
	if (atomic_write("monitor.pid", pid, (size_t)n, false) < 0)
		fatal_setup("write monitor.pid");
	log_open();
	if (logb.fd < 0)
		fatal_setup(opt.log_path);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN); /* before anything writes to the sync fd */
	/* Fixed thresholds: big client queues are mmapped and go back to the kernel when freed (RSS stays low). */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024);
	if (argc > 1 && strcmp(argv[1], "--exec-tty") == 0)
		exec_tty_main(argc, argv);
	parse_args(argc, argv);
	daemonize();
	setup();
	create_container();
	after_create();
	main_loop();
	finish(-1);
}
