/* What an upload's name and content type must be to be kept and served
 * back as given (GET …/attachments/{id} answers with both). */
#ifndef ITPM_UPLOAD_H
#define ITPM_UPLOAD_H

/* A file name a user can be given back: UTF-8, printable, not blank, no
 * path, nothing that hides what it is (controls, format characters,
 * separators, private use), at most 255 bytes. */
int upload_filename_valid(const char *name);
/* type/subtype (RFC 9110 tokens), then parameters without control
 * characters. */
int upload_media_type_valid(const char *type);

#endif
