/* xml.qtn.h - a sidecar for libxml2: its own declarations, annotated, for
 * the entries the test isolates. A document is libxml2's (a handle it
 * issues); a dump is memory libxml2 allocates and the caller frees with
 * xmlFree, which the host's copy comes from xmlMalloc for. */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlmemory.h>

#include "quarantine.h"

QTN_COMPONENT(xml) QTN_FAULT(NULL) QTN_OWNED
xmlDocPtr xmlReadMemory(const char *buffer QTN_IN_BYTES(size), int size,
                        const char *URL QTN_STRING QTN_NULLABLE,
                        const char *encoding QTN_STRING QTN_NULLABLE, int options);

QTN_COMPONENT(xml)
void xmlDocDumpMemory(xmlDocPtr cur QTN_OWNED,
                      xmlChar **mem QTN_ALLOCATED(*size, xmlFree, xmlMalloc),
                      int *size QTN_OUT(1));

/* the root element: a node of the document's, a handle as the document is */
QTN_COMPONENT(xml) QTN_FAULT(NULL) QTN_OWNED
xmlNodePtr xmlDocGetRootElement(const xmlDoc *doc QTN_OWNED);

/* a string libxml2 allocates and the caller frees with xmlFree */
QTN_COMPONENT(xml) QTN_FAULT(NULL) QTN_ALLOCATED(string, xmlFree, xmlMalloc)
xmlChar *xmlNodeGetContent(const xmlNode *cur QTN_OWNED);

QTN_COMPONENT(xml)
void xmlFreeDoc(xmlDocPtr cur QTN_OWNED);
