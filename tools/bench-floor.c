// The kernel's own cost of a container, with no runtime around it: the yardstick of the server
// benchmark (tools/bench-server.mjs compiles and runs it). Each round clones a child into new
// user, PID, network, mount, UTS, IPC and cgroup namespaces, writes its id maps from outside,
// and the child binds the rootfs onto itself, mounts a proc, pivots into it, detaches the old
// root and executes the rootfs's /bin/true; the parent waits for it. No /dev, /sys, masked
// paths, seccomp, capabilities, init or idmapped mounts: a real container has all of those on
// top, so no runtime can start one for less CPU on the same machine.
//
//   bench-floor ROOTFS COUNT HOSTID   (root: the child's root is HOSTID outside)
//
// Exits 0 after COUNT containers that all exited 0; otherwise 1, with the reason on stderr.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *rootfs;
static int go[2];
static char child_stack[64 * 1024] __attribute__((aligned(16)));

/* Exit codes of the child say which step failed. */
enum { WAIT_FAILED = 90, PRIVATE_FAILED, BIND_FAILED, CHDIR_FAILED, PROC_FAILED, PIVOT_FAILED, DETACH_FAILED, EXEC_FAILED };

static int child(void *unused) {
  (void)unused;
  char byte;
  close(go[1]);
  /* Released (EOF) once the id maps are written. */
  if (read(go[0], &byte, 1) != 0) _exit(WAIT_FAILED);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) _exit(PRIVATE_FAILED);
  if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) _exit(BIND_FAILED);
  if (chdir(rootfs) != 0) _exit(CHDIR_FAILED);
  /* Before the old root goes: a new proc needs a fully visible one in its mount namespace. */
  if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) _exit(PROC_FAILED);
  if (syscall(SYS_pivot_root, ".", ".") != 0) _exit(PIVOT_FAILED);
  if (umount2(".", MNT_DETACH) != 0) _exit(DETACH_FAILED);
  execl("/bin/true", "true", (char *)NULL);
  _exit(EXEC_FAILED);
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: bench-floor ROOTFS COUNT HOSTID\n");
    return 1;
  }
  rootfs = argv[1];
  long count = strtol(argv[2], NULL, 10);
  const char *host_id = argv[3];
  const int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP;
  char path[64], map[64];
  snprintf(map, sizeof map, "0 %s 1\n", host_id);
  for (long i = 0; i < count; i++) {
    if (pipe2(go, O_CLOEXEC) != 0) {
      perror("bench-floor: pipe");
      return 1;
    }
    pid_t pid = clone(child, child_stack + sizeof child_stack, flags | SIGCHLD, NULL);
    if (pid < 0) {
      perror("bench-floor: clone");
      return 1;
    }
    close(go[0]);
    const char *steps[][2] = {{"uid_map", map}, {"setgroups", "deny"}, {"gid_map", map}};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
      snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, steps[s][0]);
      if (write_file(path, steps[s][1]) != 0) {
        fprintf(stderr, "bench-floor: write %s: %s\n", path, strerror(errno));
        kill(pid, SIGKILL);
        return 1;
      }
    }
    close(go[1]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "bench-floor: the child ended with status 0x%x (exit codes 90-97: the step that failed)\n", status);
      return 1;
    }
  }
  return 0;
}
