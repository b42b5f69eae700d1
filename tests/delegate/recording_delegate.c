/* A TFLite external delegate that claims no nodes and writes down what it was given.
 *
 * It stands where a hardware delegate's library would (libedgetpu for a Coral stick): it
 * speaks the external-delegate ABI that load_delegate() calls (tflite_plugin_create_delegate
 * and tflite_plugin_destroy_delegate, TfLiteDelegate as c/common.h lays it out), so the
 * runtime loads it and calls its Prepare, and the model then runs on the CPU kernels. Each
 * option it receives, Prepare and destroy are appended to $EDGEPERF_DELEGATE_LOG. An option
 * fail=MESSAGE makes creation fail through report_error, as a delegate whose device is
 * missing does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct TfLiteContext TfLiteContext;
typedef struct TfLiteDelegate {
  void *data_;
  int (*Prepare)(TfLiteContext *context, struct TfLiteDelegate *delegate);
  int (*CopyFromBufferHandle)(TfLiteContext *, struct TfLiteDelegate *, int, void *);
  int (*CopyToBufferHandle)(TfLiteContext *, struct TfLiteDelegate *, int, void *);
  void (*FreeBufferHandle)(TfLiteContext *, struct TfLiteDelegate *, int *);
  int64_t flags;
  void *opaque_delegate_builder;
} TfLiteDelegate;

static void note(const char *what, const char *value) {
  const char *path = getenv("EDGEPERF_DELEGATE_LOG");
  if (!path) return;
  FILE *f = fopen(path, "a");
  if (!f) return;
  fprintf(f, value ? "%s=%s\n" : "%s\n", what, value);
  fclose(f);
}

static int prepare(TfLiteContext *context, TfLiteDelegate *delegate) {
  (void)context; (void)delegate;
  note("prepare", NULL);
  return 0; /* kTfLiteOk, no node taken */
}

TfLiteDelegate *tflite_plugin_create_delegate(char **keys, char **values, size_t n,
                                              void (*report_error)(const char *)) {
  for (size_t i = 0; i < n; i++) {
    note(keys[i], values[i]);
    if (strcmp(keys[i], "fail") == 0) {
      if (report_error) report_error(values[i]);
      return NULL;
    }
  }
  /* room past the struct: a runtime built against a later common.h reads no garbage */
  TfLiteDelegate *d = calloc(1, sizeof(TfLiteDelegate) + 256);
  if (!d) return NULL;
  d->Prepare = prepare;
  note("created", NULL);
  return d;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate *delegate) {
  note("destroyed", NULL);
  free(delegate);
}
