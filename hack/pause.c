/* The Pod sandbox's process: holds the Pod's namespaces open and does nothing else. Built
 * static by hack/node into the node's pause image, so the node needs no image registry. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static void stop(int signal) { _exit(128 + signal); }

int main(void) {
  signal(SIGTERM, stop);
  signal(SIGINT, stop);
  for (;;) pause();
}
