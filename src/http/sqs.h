/* sqs.h - private to src/http/: the SQS consumer's pure pieces, for the tests. */
#ifndef DI_HTTP_SQS_H
#define DI_HTTP_SQS_H

#include <stddef.h>

/* di_sqs_endpoint gives the endpoint a queue URL's actions are POSTed to
 * ("scheme://host[:port]/") and, for sqs.REGION.amazonaws.com, the region
 * ("" otherwise). -1 for anything but an http(s) URL with a host and no
 * user info. */
int di_sqs_endpoint(const char *queue_url, char *endpoint, size_t esz, char *region, size_t rsz);

#endif
