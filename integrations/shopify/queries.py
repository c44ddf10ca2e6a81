"""Every GraphQL document the Shopify client sends, in one place.

A test validates each against the real Admin schema; the sandbox's SDL must cover them.
Page sizes are chosen so a query's requested cost stays under Shopify's 1,000-point
ceiling: a connection costs 2 + first x (its node's cost), objects 1, scalars 0.
"""

from __future__ import annotations

ORDERS_PER_PAGE = 10
LINES_PER_ORDER_PAGE = 15
LINES_PER_FOLLOW_UP = 100
VARIANTS_PER_PAGE = 100
TRANSACTIONS_PER_ORDER_READ = 5  # the payment is among the first: a sale, or an authorization and its capture

_MONEY = "shopMoney { amount currencyCode }"

_ORDER_BASICS = f"""
id name createdAt updatedAt processedAt cancelledAt closed closedAt
displayFulfillmentStatus currencyCode taxesIncluded requiresShipping
totalPriceSet {{ {_MONEY} }}
totalShippingPriceSet {{ {_MONEY} }}
totalTaxSet {{ {_MONEY} }}
totalDiscountsSet {{ {_MONEY} }}
email phone
customer {{ id firstName lastName defaultEmailAddress {{ emailAddress }} defaultPhoneNumber {{ phoneNumber }} }}
shippingAddress {{ name firstName lastName company address1 address2 city province provinceCode zip countryCodeV2 phone }}
risk {{ recommendation assessments {{ riskLevel }} }}
"""
PAYMENT_FIELDS = "kind status gateway paymentId"
# A page of orders reads the first few transactions; a bulk export takes no sizes at all.
ORDER_FIELDS = _ORDER_BASICS + f"transactions(first: {TRANSACTIONS_PER_ORDER_READ}) {{ {PAYMENT_FIELDS} }}\n"

LINE_FIELDS = f"""
id sku title quantity requiresShipping
originalUnitPriceSet {{ {_MONEY} }}
totalDiscountSet {{ {_MONEY} }}
"""

ORDERS_PAGE = f"""
query OrdersPage($first: Int!, $after: String, $query: String!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      {ORDER_FIELDS}
      lineItems(first: {LINES_PER_ORDER_PAGE}) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{ {LINE_FIELDS} }}
      }}
    }}
  }}
}}
"""

ORDER_LINES_PAGE = f"""
query OrderLinesPage($id: ID!, $after: String) {{
  order(id: $id) {{
    id
    lineItems(first: {LINES_PER_FOLLOW_UP}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ {LINE_FIELDS} }}
    }}
  }}
}}
"""

# Bulk queries take connections without `first`; each line item arrives on a JSONL
# line of its own carrying `__parentId`.
BULK_ORDERS_QUERY = f"""
{{
  orders(sortKey: UPDATED_AT) {{
    edges {{ node {{
      {_ORDER_BASICS}
      transactions {{ {PAYMENT_FIELDS} }}
      lineItems {{ edges {{ node {{ {LINE_FIELDS} }} }} }}
    }} }}
  }}
}}
"""

BULK_RUN = """
mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status createdAt }
    userErrors { field message code }
  }
}
"""

BULK_STATUS = """
query BulkStatus($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl
  }
}
"""

VARIANTS_PAGE = f"""
query VariantsPage($first: Int!, $after: String, $query: String) {{
  productVariants(first: $first, after: $after, query: $query, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id sku title price barcode updatedAt
      product {{ id title handle productType status }}
    }}
  }}
}}
"""

SHOP_PING = """
query ShopPing { shop { id name currencyCode } }
"""

# Adopting an export already running (bulkOperationRunQuery answered OPERATION_IN_PROGRESS
# or LIMIT_REACHED). `currentBulkOperation` is deprecated in favour of `bulkOperations`, but
# 2026-10 still serves it and so does the sandbox; `query` lets the client check that the
# operation exports BULK_ORDERS_QUERY before adopting it.
CURRENT_BULK = """
query CurrentBulk {
  currentBulkOperation(type: QUERY) {
    id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url query
  }
}
"""

# ---------------------------------------------------------------- write-backs (OrderWriter)
# inventorySetQuantities and refundCreate take Shopify's `@idempotent(key:)` directive
# (required since 2026-04): a repeat with the same key answers the first result. The
# note (orderUpdate) and fulfillmentCreate have none: the client looks before writing.

SKUS_PER_LOOKUP = 50
FULFILLMENT_ORDERS_PER_PAGE = 5
LINES_PER_FULFILLMENT_ORDER = 50
FULFILLMENTS_PER_FULFILLMENT_ORDER = 5
FULFILLMENTS_PER_FOLLOW_UP = 100
TRANSACTIONS_PER_ORDER = 30
LINES_PER_REFUND_LOOKUP = 100

PRIMARY_LOCATION = """
query PrimaryLocation { location { id } }
"""

# Variants found by `sku:"A" OR sku:"B" ...` (a search may match more than asked: the client
# keeps exact SKUs), each with its inventory item's `available` units at Clerk's location.
STOCK_BY_SKU = f"""
query StockBySku($query: String!, $location: ID!, $after: String) {{
  productVariants(first: {SKUS_PER_LOOKUP}, after: $after, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      sku
      inventoryItem {{
        id
        inventoryLevel(locationId: $location) {{ quantities(names: ["available"]) {{ name quantity }} }}
      }}
    }}
  }}
}}
"""

# Each quantity carries `changeFromQuantity`, the count it was read at: Shopify refuses the
# whole mutation (CHANGE_FROM_QUANTITY_STALE) when one has moved since.
SET_STOCK = """
mutation SetStock($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
"""

ORDER_NOTE = """
query OrderNote($id: ID!) { order(id: $id) { id note } }
"""

UPDATE_NOTE = """
mutation UpdateNote($input: OrderInput!) {
  orderUpdate(input: $input) {
    order { id note }
    userErrors { field message }
  }
}
"""

_FULFILLMENT_ORDER_LINE = "id sku remainingQuantity lineItem { sku }"

# An order's fulfillment orders, a page at a time, each with its first lines and the ids of
# its first fulfillments; FULFILLMENT_ORDER_LINES and FULFILLMENT_ORDER_FULFILLMENTS read the
# rest. `Order.fulfillments` is a plain list that cannot be paged, hence the detour.
ORDER_FULFILLMENT_ORDERS = f"""
query OrderFulfillmentOrders($id: ID!, $after: String) {{
  order(id: $id) {{
    id
    fulfillmentOrders(first: {FULFILLMENT_ORDERS_PER_PAGE}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        id status
        assignedLocation {{ location {{ id }} }}
        lineItems(first: {LINES_PER_FULFILLMENT_ORDER}) {{
          pageInfo {{ hasNextPage endCursor }}
          nodes {{ {_FULFILLMENT_ORDER_LINE} }}
        }}
        fulfillments(first: {FULFILLMENTS_PER_FULFILLMENT_ORDER}) {{
          pageInfo {{ hasNextPage endCursor }}
          nodes {{ id }}
        }}
      }}
    }}
  }}
}}
"""

FULFILLMENT_ORDER_LINES = f"""
query FulfillmentOrderLines($id: ID!, $after: String) {{
  fulfillmentOrder(id: $id) {{
    id
    lineItems(first: {LINES_PER_FOLLOW_UP}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ {_FULFILLMENT_ORDER_LINE} }}
    }}
  }}
}}
"""

FULFILLMENT_ORDER_FULFILLMENTS = f"""
query FulfillmentOrderFulfillments($id: ID!, $after: String) {{
  fulfillmentOrder(id: $id) {{
    id
    fulfillments(first: {FULFILLMENTS_PER_FOLLOW_UP}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ id }}
    }}
  }}
}}
"""

# One fulfillment, its lines a page at a time. `trackingInfo` is a plain list, read whole.
FULFILLMENT_LINES = f"""
query FulfillmentLines($id: ID!, $after: String) {{
  fulfillment(id: $id) {{
    id status
    trackingInfo {{ number }}
    fulfillmentLineItems(first: {LINES_PER_FOLLOW_UP}, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ quantity lineItem {{ sku }} }}
    }}
  }}
}}
"""

CREATE_FULFILLMENT = """
mutation CreateFulfillment($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status }
    userErrors { field message }
  }
}
"""

ORDER_REFUNDABLE = f"""
query OrderRefundable($id: ID!) {{
  order(id: $id) {{
    id
    presentmentCurrencyCode
    lineItems(first: {LINES_PER_REFUND_LOOKUP}) {{ nodes {{ id sku quantity }} }}
    transactions(first: {TRANSACTIONS_PER_ORDER}) {{
      id kind status gateway
      amountSet {{ presentmentMoney {{ amount currencyCode }} }}
    }}
  }}
}}
"""

CREATE_REFUND = """
mutation CreateRefund($input: RefundInput!, $key: String!) {
  refundCreate(input: $input) @idempotent(key: $key) {
    refund { id }
    userErrors { field message }
  }
}
"""

# ---------------------------------------------------------------- return requests (ReturnSource)
# Orders with a return asked for (`return_status:return_requested`) or under way (`in_progress`),
# changed at or after a moment, each with its first returns, their lines (the SKU through the
# fulfillment line) and the refunds Shopify already made for them. A return with more lines than
# a page holds is reported unreadable rather than read in part.

RETURN_ORDERS_PER_PAGE = 7  # about 130 points each: a page stays under the 1,000-point ceiling
RETURNS_PER_ORDER = 3
LINES_PER_RETURN = 10
REFUNDS_PER_RETURN = 2

RETURNS_PAGE = f"""
query ReturnsPage($first: Int!, $after: String, $query: String!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id name
      returns(first: {RETURNS_PER_ORDER}) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{
          id name status createdAt
          returnLineItems(first: {LINES_PER_RETURN}) {{
            pageInfo {{ hasNextPage }}
            nodes {{
              quantity returnReason returnReasonNote customerNote
              ... on ReturnLineItem {{ fulfillmentLineItem {{ lineItem {{ sku }} }} }}
            }}
          }}
          refunds(first: {REFUNDS_PER_RETURN}) {{ nodes {{ totalRefundedSet {{ {_MONEY} }} }} }}
        }}
      }}
    }}
  }}
}}
"""

ALL_DOCUMENTS = {
    "OrdersPage": ORDERS_PAGE,
    "OrderLinesPage": ORDER_LINES_PAGE,
    "BulkOrdersQuery": BULK_ORDERS_QUERY,
    "BulkRun": BULK_RUN,
    "BulkStatus": BULK_STATUS,
    "VariantsPage": VARIANTS_PAGE,
    "ShopPing": SHOP_PING,
    "CurrentBulk": CURRENT_BULK,
    "PrimaryLocation": PRIMARY_LOCATION,
    "StockBySku": STOCK_BY_SKU,
    "SetStock": SET_STOCK,
    "OrderNote": ORDER_NOTE,
    "UpdateNote": UPDATE_NOTE,
    "OrderFulfillmentOrders": ORDER_FULFILLMENT_ORDERS,
    "FulfillmentOrderLines": FULFILLMENT_ORDER_LINES,
    "FulfillmentOrderFulfillments": FULFILLMENT_ORDER_FULFILLMENTS,
    "FulfillmentLines": FULFILLMENT_LINES,
    "CreateFulfillment": CREATE_FULFILLMENT,
    "OrderRefundable": ORDER_REFUNDABLE,
    "CreateRefund": CREATE_REFUND,
    "ReturnsPage": RETURNS_PAGE,
}
