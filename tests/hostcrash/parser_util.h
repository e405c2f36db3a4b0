/* parser_util.h - helpers of the parser, in a file of their own. */
#ifndef PARSER_UTIL_H
#define PARSER_UTIL_H

int parser_scan(const char *s);

#endif
