/* codec_more.c - more of component codec: an entry that calls another entry
 * of codec, defined in codec.c (so the call goes through its stub), and one
 * that starts threads one after the other. */
#include <pthread.h>
#include <stddef.h>

#include "codec.h"

static void *codec_nothing(void *arg) { return arg; }

int codec_threads(int32_t n) {
    int started = 0;
    for (int32_t i = 0; i < n; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, codec_nothing, NULL))
            continue;
        pthread_join(th, NULL);
        started++;
    }
    return started;
}

int codec_relay(int32_t n) {
    int pid = -1;
    for (int32_t i = 0; i < n; i++)
        pid = codec_pid();
    return pid;
}
