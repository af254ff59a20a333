/* hcsshim's ProcessConfig mapped onto the bridge's ProcessParameters
 * (protocol.md §7.4), refusing what a Linux guest cannot honour, and the
 * IDs the library makes up when the caller gives none. */
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "api/api-int.h"

void hcsb__container_id_generate(char out[65]) {
  static const char hex[] = "0123456789abcdef";
  uuid_t u[2];
  size_t i;

  /* hcsshim's IDs are 32 random bytes in hex; two v4 UUIDs give 244 random
   * bits, plenty for an identifier that only has to be unique. */
  uuid_generate_random(u[0]);
  uuid_generate_random(u[1]);
  for (i = 0; i < 32; i++) {
    unsigned char b = ((const unsigned char *)u)[i];
    out[2 * i] = hex[b >> 4];
    out[2 * i + 1] = hex[b & 15];
  }
  out[64] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Command lines */

void hcsb__free_argv(char **argv, size_t argc) {
  size_t i;

  if (argv == NULL) return;
  for (i = 0; i < argc; i++) free(argv[i]);
  free(argv);
}

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n';
}

int hcsb__split_command_line(const char *line, char ***argv_out, size_t *argc) {
  size_t n = strlen(line), count = 0, len;
  char **argv = NULL, *word = NULL;
  const char *p = line;
  int r = -EINVAL;

  *argv_out = NULL;
  *argc = 0;
  /* No word can be longer than the line, nor can there be more words than
   * half its length plus one. */
  argv = calloc(n / 2 + 2, sizeof(*argv));
  if (argv == NULL) return -ENOMEM;
  for (;;) {
    while (is_blank(*p)) p++;
    if (*p == '\0') break;
    word = malloc(n + 1);
    if (word == NULL) {
      r = -ENOMEM;
      goto fail;
    }
    len = 0;
    while (*p != '\0' && !is_blank(*p)) {
      char q = *p;
      if (q == '\'') {
        for (p++; *p != '\0' && *p != '\''; p++) word[len++] = *p;
        if (*p != '\'') goto fail;
        p++;
      } else if (q == '"') {
        for (p++; *p != '\0' && *p != '"'; p++) {
          if (*p == '\\' &&
              (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
            p++;
          word[len++] = *p;
        }
        if (*p != '"') goto fail;
        p++;
      } else if (q == '\\' && p[1] != '\0') {
        word[len++] = p[1];
        p += 2;
      } else {
        word[len++] = q;
        p++;
      }
    }
    word[len] = '\0';
    argv[count++] = word;
    word = NULL;
  }
  if (count == 0) goto fail;
  *argv_out = argv;
  *argc = count;
  return 0;
fail:
  free(word);
  hcsb__free_argv(argv, count);
  return r;
}

/* ------------------------------------------------------------------------ */
/* ProcessParameters */

static int env_ok(const hcsb_process_config_t *c) {
  size_t i;

  if (c->nenvironment != 0 && c->environment == NULL) return 0;
  for (i = 0; i < c->nenvironment; i++)
    if (c->environment[i] == NULL || strchr(c->environment[i], '=') == NULL)
      return 0;
  return 1;
}

static int has_command(const hcsb_process_config_t *c) {
  return c->ncommand_args != 0 ||
         (c->command_line != NULL && c->command_line[0] != '\0');
}

static void put_pipes(hcsb__jw_t *w, const hcsb_process_config_t *c) {
  hcsb__jw_kbool(w, "CreateStdInPipe", c->create_stdin_pipe);
  hcsb__jw_kbool(w, "CreateStdOutPipe", c->create_stdout_pipe);
  hcsb__jw_kbool(w, "CreateStdErrPipe", c->create_stderr_pipe);
}

static void put_uvm(hcsb__jw_t *w, const hcsb_process_config_t *c,
                    int in_container) {
  size_t i;

  if (c->ncommand_args != 0) {
    hcsb__jw_key(w, "CommandArgs");
    hcsb__jw_arr(w);
    for (i = 0; i < c->ncommand_args; i++) hcsb__jw_str(w, c->command_args[i]);
    hcsb__jw_arr_end(w);
  } else {
    hcsb__jw_kstr(w, "CommandLine", c->command_line);
  }
  hcsb__jw_kstr(w, "WorkingDirectory", c->working_directory);
  if (c->nenvironment != 0) {
    hcsb__jw_key(w, "Environment");
    hcsb__jw_obj(w);
    for (i = 0; i < c->nenvironment; i++) {
      const char *kv = c->environment[i], *eq = strchr(kv, '=');
      hcsb__jw_keyn(w, kv, (size_t)(eq - kv));
      hcsb__jw_str(w, eq + 1);
    }
    hcsb__jw_obj_end(w);
  }
  hcsb__jw_kbool(w, "EmulateConsole", c->emulate_console);
  put_pipes(w, c);
  /* [height, width], where hcsshim's ProcessParameters has it.  A Linux
   * GCS ignores it (protocol.md §7.4); guests that size the pty from it
   * need no ResizeConsole for the first size. */
  if (c->emulate_console && (c->console_height != 0 || c->console_width != 0)) {
    hcsb__jw_key(w, "ConsoleSize");
    hcsb__jw_arr(w);
    hcsb__jw_u64(w, c->console_height);
    hcsb__jw_u64(w, c->console_width);
    hcsb__jw_arr_end(w);
  }
  hcsb__jw_kbool(w, "CreateInUtilityVM", in_container);
}

/* The OCI process object of an exec, in runtime-spec field order. */
static int put_oci_process(hcsb__jw_t *w, const hcsb_process_config_t *c) {
  char **argv = NULL;
  size_t argc = 0, i;
  int r;

  if (c->ncommand_args == 0) {
    r = hcsb__split_command_line(c->command_line, &argv, &argc);
    if (r != 0) return r;
  }
  hcsb__jw_key(w, "OciProcess");
  hcsb__jw_obj(w);
  hcsb__jw_key(w, "terminal");
  hcsb__jw_bool(w, c->emulate_console);
  if (c->emulate_console && (c->console_height != 0 || c->console_width != 0)) {
    hcsb__jw_key(w, "consoleSize");
    hcsb__jw_obj(w);
    hcsb__jw_key(w, "height");
    hcsb__jw_u64(w, c->console_height);
    hcsb__jw_key(w, "width");
    hcsb__jw_u64(w, c->console_width);
    hcsb__jw_obj_end(w);
  }
  if (c->user != NULL && c->user[0] != '\0') {
    /* uid/gid are not omitempty in the spec; the guest resolves the name
     * against the container's rootfs and overrides them. */
    hcsb__jw_key(w, "user");
    hcsb__jw_obj(w);
    hcsb__jw_key(w, "uid");
    hcsb__jw_u64(w, 0);
    hcsb__jw_key(w, "gid");
    hcsb__jw_u64(w, 0);
    hcsb__jw_kstr(w, "username", c->user);
    hcsb__jw_obj_end(w);
  }
  hcsb__jw_key(w, "args");
  hcsb__jw_arr(w);
  if (c->ncommand_args != 0)
    for (i = 0; i < c->ncommand_args; i++) hcsb__jw_str(w, c->command_args[i]);
  else
    for (i = 0; i < argc; i++) hcsb__jw_str(w, argv[i]);
  hcsb__jw_arr_end(w);
  if (c->nenvironment != 0) {
    hcsb__jw_key(w, "env");
    hcsb__jw_arr(w);
    for (i = 0; i < c->nenvironment; i++) hcsb__jw_str(w, c->environment[i]);
    hcsb__jw_arr_end(w);
  }
  hcsb__jw_key(w, "cwd");
  hcsb__jw_str(w,
               c->working_directory != NULL && c->working_directory[0] != '\0'
                   ? c->working_directory
                   : "/");
  hcsb__jw_obj_end(w);
  hcsb__free_argv(argv, argc);
  return 0;
}

int hcsb__process_size_sent(const hcsb_process_config_t *c, int in_container) {
  int uvm = !in_container || c->create_in_utility_vm;

  if (!c->emulate_console || (c->console_height == 0 && c->console_width == 0))
    return 0;
  /* put_uvm's ConsoleSize, or put_oci_process's consoleSize. */
  return uvm || (c->oci_process_json == NULL && has_command(c));
}

/* A caller's OCI process text: must be an object; its "terminal" decides
 * whether stderr can exist. */
static int oci_terminal(const char *text, int *tty) {
  json_object *root = NULL, *t;
  int r = hcsb__json_parse(text, strlen(text), &root);

  if (r != 0) return r == -ENOMEM ? r : -EINVAL;
  if (!json_object_is_type(root, json_type_object)) {
    json_object_put(root);
    return -EINVAL;
  }
  t = hcsb__json_get(root, "terminal");
  *tty = t != NULL && json_object_is_type(t, json_type_boolean) &&
         json_object_get_boolean(t);
  json_object_put(root);
  return 0;
}

int hcsb__process_params(const hcsb_process_config_t *c, int in_container,
                         char **json_out, int *tty) {
  int uvm = !in_container || c->create_in_utility_vm;
  int init = !uvm && c->oci_process_json == NULL && !has_command(c);
  hcsb__jw_t w;
  size_t i;
  int r;

  *json_out = NULL;
  *tty = -1;
  if (c->application_name != NULL || c->oci_specification_json != NULL)
    return -ENOTSUP;
  if ((c->ncommand_args != 0 && c->command_args == NULL) || !env_ok(c))
    return -EINVAL;
  for (i = 0; i < c->ncommand_args; i++)
    if (c->command_args[i] == NULL) return -EINVAL;
  if (uvm) {
    if (c->user != NULL) return -ENOTSUP;
    if (!has_command(c)) return -EINVAL;
    *tty = c->emulate_console;
  } else if (c->oci_process_json != NULL) {
    r = oci_terminal(c->oci_process_json, tty);
    if (r != 0) return r;
  } else if (!init) {
    *tty = c->emulate_console;
  }
  /* With a terminal, output is merged onto stdout: no stderr exists. */
  if (*tty == 1 && c->create_stderr_pipe) return -EINVAL;

  hcsb__jw_init(&w);
  hcsb__jw_obj(&w);
  if (uvm) {
    put_uvm(&w, c, in_container);
  } else if (c->oci_process_json != NULL) {
    put_pipes(&w, c);
    hcsb__jw_key(&w, "OciProcess");
    hcsb__jw_raw(&w, c->oci_process_json, strlen(c->oci_process_json));
  } else if (!init) {
    put_pipes(&w, c);
    r = put_oci_process(&w, c);
    if (r != 0) {
      hcsb__jw_free(&w);
      return r;
    }
  } else {
    /* The container's init: its process comes from the Create spec. */
    put_pipes(&w, c);
  }
  hcsb__jw_obj_end(&w);
  return hcsb__jw_finish(&w, json_out);
}
